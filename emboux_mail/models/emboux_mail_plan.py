from dateutil.relativedelta import relativedelta

from odoo import api, fields, models

PERIODS = {"month": relativedelta(months=1), "year": relativedelta(years=1)}

DEFAULTS = {
    "domains_allowed": 0,
    "mailboxes_per_domain": 1,
    "aliases_per_mailbox": 5,
    "quota_mb": 1024,
    "max_quota_mb": 10240,
    "outbound_daily_limit": 500,
    "outbound_monthly_limit": 10000,
    "max_outbound_daily_limit": 2000,
    "max_outbound_monthly_limit": 50000,
    "transfer_monthly_mb": 10240,
    "retention_days": 0,
    "max_retention_days": 0,
}


class EmbouxMailPlan(models.Model):
    """A hosting offer: the quotas a customer's API keys start from."""

    _name = "emboux.mail.plan"
    _description = "Mail Hosting Plan"
    _order = "sequence, id"

    name = fields.Char(required=True, translate=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company", help="Leave empty to offer the plan in every company."
    )
    domains_allowed = fields.Integer(
        string="Domains per Customer",
        default=DEFAULTS["domains_allowed"],
        help="How many domains a customer may own; 0 means unlimited.",
    )
    mailboxes_per_domain = fields.Integer(
        string="Mailboxes per Domain",
        default=DEFAULTS["mailboxes_per_domain"],
        help="How many mailboxes each domain may hold; 0 means unlimited.",
    )
    aliases_per_mailbox = fields.Integer(
        string="Aliases per Mailbox",
        default=DEFAULTS["aliases_per_mailbox"],
        help="How many aliases may point at one address; 0 means unlimited.",
    )
    quota_mb = fields.Integer(
        string="Mailbox Storage (MB)",
        default=DEFAULTS["quota_mb"],
        help="Storage quota given to each new mailbox.",
    )
    max_quota_mb = fields.Integer(
        string="Maximum Mailbox Size (MB)",
        default=DEFAULTS["max_quota_mb"],
        help="The largest storage quota a customer may give one of its "
        "mailboxes; only operators may go beyond it or make it unlimited.",
    )
    outbound_daily_limit = fields.Integer(
        string="Messages per Day",
        default=DEFAULTS["outbound_daily_limit"],
        help="The daily sending limit of each new domain; 0 means unlimited.",
    )
    outbound_monthly_limit = fields.Integer(
        string="Messages per Month",
        default=DEFAULTS["outbound_monthly_limit"],
        help="The monthly sending limit of each new domain; 0 means unlimited.",
    )
    max_outbound_daily_limit = fields.Integer(
        string="Highest Daily Limit",
        default=DEFAULTS["max_outbound_daily_limit"],
        help="How far a customer may raise a domain's daily limit itself; 0 "
        "means no ceiling (unlimited included).",
    )
    max_outbound_monthly_limit = fields.Integer(
        string="Highest Monthly Limit",
        default=DEFAULTS["max_outbound_monthly_limit"],
        help="How far a customer may raise a domain's monthly limit itself; 0 "
        "means no ceiling (unlimited included).",
    )
    outbound_enforcement = fields.Selection(
        [("hard", "Hard: refuse"), ("soft", "Soft: send and bill")],
        string="Over the Limit",
        required=True,
        default="hard",
        help="What new domains do past a sending limit: refuse the message, "
        "or send it and count it as overage for billing.",
    )
    transfer_monthly_mb = fields.Integer(
        string="Transfer per Month (MB)",
        default=DEFAULTS["transfer_monthly_mb"],
        help="How many megabytes of outgoing mail each new domain may send "
        "per month; 0 means unlimited.",
    )
    retention_days = fields.Integer(
        string="Keep Mail (days)",
        default=DEFAULTS["retention_days"],
        help="How long each new domain keeps its mail before the mail server "
        "deletes it; 0 keeps it forever.",
    )
    max_retention_days = fields.Integer(
        string="Longest Retention (days)",
        default=DEFAULTS["max_retention_days"],
        help="The longest a customer may keep its mail itself; 0 means no "
        "ceiling (keeping it forever included).",
    )
    product_id = fields.Many2one(
        "product.product",
        string="Product",
        domain=[("type", "=", "service")],
        help="The service product invoiced for the plan, with its price. A "
        "plan without product is not sold (a free plan, for example).",
    )
    list_price = fields.Float(
        related="product_id.lst_price", string="Price", readonly=True
    )
    currency_id = fields.Many2one(related="product_id.currency_id")
    billing_period = fields.Selection(
        [("month", "Monthly"), ("year", "Yearly")],
        required=True,
        default="month",
        help="How long one paid invoice of the plan lasts.",
    )
    partner_ids = fields.One2many("res.partner", "emboux_plan_id", string="Customers")
    partner_count = fields.Integer(compute="_compute_partner_count")

    _sql_constraints = [
        (
            "quotas_positive",
            "CHECK(domains_allowed >= 0 AND mailboxes_per_domain >= 0 "
            "AND aliases_per_mailbox >= 0 AND quota_mb >= 0 "
            "AND outbound_daily_limit >= 0 AND outbound_monthly_limit >= 0 "
            "AND max_outbound_daily_limit >= 0 AND max_outbound_monthly_limit >= 0 "
            "AND transfer_monthly_mb >= 0 AND retention_days >= 0 "
            "AND max_retention_days >= 0)",
            "Quotas cannot be negative.",
        ),
        (
            "max_quota_positive",
            "CHECK(max_quota_mb > 0)",
            "The maximum mailbox size must be at least 1 MB.",
        ),
    ]

    def write(self, vals):
        self.env["emboux.mail.sync.undo"]._emboux_journal("write", self, vals)
        result = super().write(vals)
        if {"domains_allowed", "mailboxes_per_domain", "aliases_per_mailbox"} & set(
            vals
        ):
            keys = (
                self.env["emboux.mail.api.key"]
                .sudo()
                .search([("plan_id", "in", self.ids), ("quota_override", "=", False)])
            )
            keys._emboux_sync_quotas()
        return result

    @api.depends("partner_ids")
    def _compute_partner_count(self):
        for plan in self:
            plan.partner_count = len(plan.partner_ids)

    def _emboux_period_end(self, start):
        """The day after one billing period of the plan started on ``start``."""
        self.ensure_one()
        return start + PERIODS[self.billing_period]

    def _emboux_monthly_price(self):
        """The price per month, to compare plans billed over other periods."""
        self.ensure_one()
        return self.list_price / (12 if self.billing_period == "year" else 1)

    @api.model
    def _default_quotas(self):
        """The quotas set in Settings, for customers without plan or key."""
        params = self.env["ir.config_parameter"].sudo()
        return {
            name: int(params.get_param(f"emboux_mail.default_{name}", default))
            for name, default in DEFAULTS.items()
        }
