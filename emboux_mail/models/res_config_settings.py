from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..services import dns_checker
from .emboux_mail_audit import RETENTION_DEFAULT, RETENTION_PARAM
from .emboux_mail_outbound_counter import BOUNCE_MIN_VOLUME, BOUNCE_RATE_LIMIT
from .emboux_mail_webhook import ALLOW_PRIVATE, DISABLE_AFTER_HOURS
from .emboux_mail_webhook_event import KEEP_DAYS

# the default quotas where 0 means unlimited
UNLIMITED_QUOTAS = (
    "emboux_default_domains_allowed",
    "emboux_default_mailboxes_per_domain",
    "emboux_default_aliases_per_mailbox",
    "emboux_default_quota_mb",
)


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    emboux_upstream_url = fields.Char(
        string="API URL",
        config_parameter="emboux_mail.upstream_url",
        help="Base URL of the EmBoux API to provision (connected mode), e.g. "
        "https://api.emboux.com. Leave empty when this database is the backend.",
    )
    emboux_upstream_token = fields.Char(
        string="Upstream Master Token",
        config_parameter="emboux_mail.upstream_token",
        help="The master token Odoo uses on the upstream API.",
    )
    emboux_default_domains_allowed = fields.Integer(
        string="Domains per Customer",
        config_parameter="emboux_mail.default_domains_allowed",
        default=0,
        help="For customers without plan or key; 0 means unlimited.",
    )
    emboux_default_mailboxes_per_domain = fields.Integer(
        string="Mailboxes per Domain",
        config_parameter="emboux_mail.default_mailboxes_per_domain",
        default=1,
    )
    emboux_default_aliases_per_mailbox = fields.Integer(
        string="Aliases per Mailbox",
        config_parameter="emboux_mail.default_aliases_per_mailbox",
        default=5,
    )
    emboux_default_quota_mb = fields.Integer(
        string="Mailbox Storage (MB)",
        config_parameter="emboux_mail.default_quota_mb",
        default=1024,
    )
    emboux_default_max_quota_mb = fields.Integer(
        string="Maximum Mailbox Size (MB)",
        config_parameter="emboux_mail.default_max_quota_mb",
        default=10240,
        help="For customers without plan: the largest quota they may set.",
    )
    emboux_fallback_plan_id = fields.Many2one(
        "emboux.mail.plan",
        string="Plan When Unpaid",
        config_parameter="emboux_mail.fallback_plan_id",
        help="The plan of a subscribed customer whose paid period ended "
        "(after the tolerance), for example a free plan with one domain. "
        "Empty: the default quotas above.",
    )
    emboux_invoice_lead_days = fields.Integer(
        string="Invoice Days Ahead",
        config_parameter="emboux_mail.invoice_lead_days",
        default=7,
        help="The next period's invoice is issued this many days before the "
        "paid period ends.",
    )
    emboux_payment_tolerance_days = fields.Integer(
        string="Payment Tolerance (days)",
        config_parameter="emboux_mail.payment_tolerance_days",
        default=3,
        help="Days after the paid period during which the plan still applies.",
    )
    emboux_grace_days = fields.Integer(
        string="Grace Period (days)",
        config_parameter="emboux_mail.grace_days",
        default=30,
        help="Days a customer over its plan's domain quota has before its "
        "surplus domains are suspended (reminders on day 7, 15 and 22).",
    )
    emboux_password_min_length = fields.Integer(
        string="Minimum Password Length",
        config_parameter="emboux_mail.password_min_length",
        default=10,
        help="Mailbox passwords shorter than this are refused everywhere: "
        "REST API, portal, backend and imports.",
    )
    emboux_bounce_rate_limit = fields.Float(
        string="Bounce Rate Limit (%)",
        config_parameter=BOUNCE_RATE_LIMIT[0],
        default=BOUNCE_RATE_LIMIT[1],
        help="A domain whose recipients bounce at this rate or more stops "
        "sending until an operator sets its Sending back to Active.",
    )
    emboux_bounce_min_volume = fields.Integer(
        string="Minimum Volume",
        config_parameter=BOUNCE_MIN_VOLUME[0],
        default=BOUNCE_MIN_VOLUME[1],
        help="The bounce rate is judged once this many recipients' deliveries "
        "have ended: a few early bounces do not stop a domain.",
    )
    emboux_dns_nameservers = fields.Char(
        string="DNS Nameservers",
        config_parameter="emboux_mail.dns_nameservers",
        help="IP addresses to ask, separated by commas; empty uses the "
        "server's resolver.",
    )
    emboux_dns_port = fields.Integer(
        string="DNS Port", config_parameter="emboux_mail.dns_port", default=53
    )
    emboux_dns_timeout = fields.Float(
        string="DNS Timeout (s)",
        config_parameter="emboux_mail.dns_timeout",
        default=2.0,
        help="How long to wait for one nameserver.",
    )
    emboux_dns_lifetime = fields.Float(
        string="DNS Lifetime (s)",
        config_parameter="emboux_mail.dns_lifetime",
        default=4.0,
        help="How long one lookup may take in all, retries included; past it "
        "the record is reported Unknown, never Missing.",
    )
    emboux_dns_mx_hosts = fields.Char(
        string="Expected MX Hosts",
        config_parameter="emboux_mail.dns_mx_hosts",
        default="mx1.emboux.com",
    )
    emboux_dns_spf_include = fields.Char(
        string="Expected SPF Include",
        config_parameter="emboux_mail.dns_spf_include",
        default="include:emboux.com",
    )
    emboux_dns_dkim_selector = fields.Char(
        string="DKIM Selector",
        config_parameter="emboux_mail.dns_dkim_selector",
        default="emboux",
    )
    emboux_dns_batch_size = fields.Integer(
        string="Domains per Batch",
        config_parameter="emboux_mail.dns_batch_size",
        default=100,
        help="The scheduled check commits after each batch.",
    )
    emboux_dns_interval_hours = fields.Integer(
        string="Check Every (hours)",
        help="The scheduled DNS check's interval (its scheduled action's).",
    )
    emboux_webhook_allow_private = fields.Boolean(
        string="Private Webhook Addresses",
        config_parameter=ALLOW_PRIVATE,
        help="Let webhook endpoints be on loopback, private and link-local "
        "addresses: for tests and receivers on your own network. Off, such "
        "URLs are refused, so that no customer can make this server call the "
        "network it sits in.",
    )
    emboux_webhook_disable_after_hours = fields.Integer(
        string="Disable Failing Endpoints After (hours)",
        config_parameter=DISABLE_AFTER_HOURS[0],
        default=DISABLE_AFTER_HOURS[1],
        help="An endpoint whose every delivery failed for this long is "
        "disabled, and its owner told.",
    )
    emboux_audit_retention_days = fields.Integer(
        string="Keep Audit Entries (days)",
        config_parameter=RETENTION_PARAM,
        default=RETENTION_DEFAULT,
        help="Older audit entries are deleted by Odoo's daily clean-up. To "
        "keep them forever, set the system parameter "
        "emboux_mail.audit_retention_days to 0.",
    )
    emboux_webhook_keep_days = fields.Integer(
        string="Keep Webhook Events (days)",
        config_parameter=KEEP_DAYS[0],
        default=KEEP_DAYS[1],
        help="Events are deleted after this many days, with their deliveries "
        "and delivery log.",
    )

    def _emboux_dns_cron(self):
        return self.env.ref(
            "emboux_mail.ir_cron_emboux_mail_dns_check", raise_if_not_found=False
        ).sudo()

    @api.model
    def get_values(self):
        """The DNS check's interval is its scheduled action's: read there
        when Settings open (a computed field showed 0 on the form)."""
        values = super().get_values()
        cron = self._emboux_dns_cron()
        if cron and cron.interval_type == "hours":
            values["emboux_dns_interval_hours"] = cron.interval_number
        return values

    def set_values(self):
        result = super().set_values()
        # Settings deletes a parameter set to 0, and its default (1 mailbox,
        # 5 aliases...) would come back: 0 is unlimited here, store it
        params = self.env["ir.config_parameter"].sudo()
        for name in UNLIMITED_QUOTAS:
            if not self[name]:
                params.set_param(self._fields[name].config_parameter, "0")
        cron = self._emboux_dns_cron()
        hours = self.emboux_dns_interval_hours
        if cron and (cron.interval_number, cron.interval_type) != (hours, "hours"):
            cron.write({"interval_number": hours, "interval_type": "hours"})
        return result

    @api.constrains("emboux_dns_nameservers")
    def _check_emboux_dns_nameservers(self):
        for settings in self:
            try:
                dns_checker.parse_nameservers(settings.emboux_dns_nameservers)
            except ValueError as error:
                raise ValidationError(
                    self.env._(
                        "DNS Nameservers: %(value)r is not an IP address.",
                        value=str(error),
                    )
                ) from error

    @api.constrains("emboux_bounce_rate_limit", "emboux_bounce_min_volume")
    def _check_emboux_bounce_guard(self):
        # Settings does not store 0 (the default would come back): refuse it
        for settings in self:
            rate = settings.emboux_bounce_rate_limit
            if not 0 < rate <= 100:
                raise ValidationError(
                    self.env._(
                        "Bounce Rate Limit: %(value)s is not a percentage above 0 "
                        "and up to 100.",
                        value=rate,
                    )
                )
            volume = settings.emboux_bounce_min_volume
            if volume < 1:
                raise ValidationError(
                    self.env._(
                        "Minimum Volume: %(value)s is not a number of recipients "
                        "(1 or more).",
                        value=volume,
                    )
                )

    @api.constrains(
        "emboux_webhook_disable_after_hours",
        "emboux_webhook_keep_days",
        "emboux_audit_retention_days",
        "emboux_dns_interval_hours",
    )
    def _check_emboux_days(self):
        # Settings does not store 0 (the default would come back): refuse it
        for settings in self:
            for name in (
                "emboux_webhook_disable_after_hours",
                "emboux_webhook_keep_days",
                "emboux_audit_retention_days",
                "emboux_dns_interval_hours",
            ):
                if settings[name] < 1:
                    raise ValidationError(
                        self.env._(
                            "%(setting)s: %(value)s is not a number above 0.",
                            setting=self._fields[name]._description_string(self.env),
                            value=settings[name],
                        )
                    )
