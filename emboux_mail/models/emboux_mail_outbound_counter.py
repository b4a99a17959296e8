from odoo import api, fields, models
from odoo.tools import SQL

# Settings of the bounce guard (ir.config_parameter), with their defaults
BOUNCE_RATE_LIMIT = ("emboux_mail.bounce_rate_limit", 3.0)
BOUNCE_MIN_VOLUME = ("emboux_mail.bounce_min_volume", 100)
# what the domain's forms and the API show of its counter
FIGURES = (
    "sent_today",
    "sent_month",
    "over_month",
    "transfer_month_bytes",
    "delivered_count",
    "bounce_count",
    "complaint_count",
    "guard_tripped",
)


class EmbouxMailOutboundCounter(models.Model):
    """What a domain sent today and this month, and how it was received.

    The mail server's policy service writes these rows, one atomic
    statement per message (see emboux_mail_api's mail server functions),
    so they live apart from the domain: a long transaction on a domain
    never holds up its mail, and counting never rewrites the domain."""

    _name = "emboux.mail.outbound.counter"
    _description = "Outbound Mail Counter"
    _rec_name = "domain_id"

    # indexed by its unique constraint
    domain_id = fields.Many2one("emboux.mail.domain", required=True, ondelete="cascade")
    sent_today = fields.Integer(readonly=True)
    sent_month = fields.Integer(readonly=True)
    refused_today = fields.Integer(
        readonly=True, help="Messages refused today by a hard limit."
    )
    over_month = fields.Integer(
        string="Over Limit This Month",
        readonly=True,
        help="Messages a soft limit let through this month: billed as overage.",
    )
    recipients_month = fields.Integer(readonly=True)
    transfer_month_bytes = fields.Float(readonly=True, digits=(16, 0))
    delivered_count = fields.Integer(
        readonly=True, help="Recipients whose delivery ended, this period."
    )
    bounce_count = fields.Integer(readonly=True)
    complaint_count = fields.Integer(readonly=True)
    guard_tripped = fields.Boolean(
        readonly=True,
        help="The bounce rate crossed its limit: the mail server stops the "
        "domain's outbound mail until an operator activates it again.",
    )
    last_sent_at = fields.Datetime(readonly=True)
    limit_told_on = fields.Date(
        readonly=True, help="The last day webhooks were told a limit was reached."
    )

    _sql_constraints = [
        ("domain_uniq", "unique(domain_id)", "A domain has one outbound counter."),
    ]

    def init(self):
        # every message rewrites its domain's row: free room on each page
        # keeps those updates HOT (no new index entry), and frequent vacuums
        # keep the dead versions from piling up in front of the live one
        self.env.cr.execute(
            SQL(
                "ALTER TABLE %s SET (fillfactor = 30, "
                "autovacuum_vacuum_scale_factor = 0, "
                "autovacuum_vacuum_threshold = 2000)",
                SQL.identifier(self._table),
            )
        )

    @api.model
    def _emboux_figures(self, domains):
        """``{domain id: {field: value}}`` of ``domains``; zeros for a domain
        that never sent. One query for the whole recordset."""
        figures = dict.fromkeys(FIGURES, 0)
        figures["guard_tripped"] = False
        rows = self.sudo().search_read(
            [("domain_id", "in", domains.ids)], ["domain_id", *FIGURES], load=False
        )
        found = {row["domain_id"]: row for row in rows}
        return {
            domain.id: {name: found.get(domain.id, figures)[name] for name in FIGURES}
            for domain in domains
        }

    def _emboux_reset_guard(self):
        """Start a new bounce period: an operator let the domain send again."""
        self.sudo().write(
            {
                "delivered_count": 0,
                "bounce_count": 0,
                "complaint_count": 0,
                "guard_tripped": False,
            }
        )

    @api.model
    def _cron_reset_daily(self):
        """Zero the daily counters (the limits start over at midnight)."""
        self.env.cr.execute(
            SQL(
                "UPDATE %s SET sent_today = 0, refused_today = 0 "
                "WHERE sent_today <> 0 OR refused_today <> 0",
                SQL.identifier(self._table),
            )
        )

    @api.model
    def _cron_reset_monthly(self):
        """Close the month: keep its figures for billing, then zero them.

        One statement takes each row's figures under its row lock and zeroes
        them, so a message counted meanwhile lands in one month only."""
        self.env.cr.execute(
            SQL(
                """
                WITH closed AS (
                    UPDATE %(counter)s c
                       SET sent_month = 0, over_month = 0, recipients_month = 0,
                           transfer_month_bytes = 0
                      FROM (SELECT id, sent_month, over_month, recipients_month,
                                   transfer_month_bytes, bounce_count,
                                   complaint_count, delivered_count
                              FROM %(counter)s FOR UPDATE) old
                     WHERE c.id = old.id
                 RETURNING c.domain_id, old.*
                )
                INSERT INTO %(month)s (domain_id, domain_name, partner_id, month,
                                       sent, over_limit, recipients, transfer_mb,
                                       delivered_count, bounce_count,
                                       complaint_count, create_date, write_date)
                SELECT closed.domain_id, d.name, d.partner_id,
                       date_trunc('month', now() AT TIME ZONE 'UTC'
                                           - interval '1 day')::date,
                       closed.sent_month, closed.over_month,
                       closed.recipients_month,
                       round((closed.transfer_month_bytes / 1048576.0)::numeric, 2),
                       closed.delivered_count, closed.bounce_count,
                       closed.complaint_count,
                       now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC'
                  FROM closed JOIN emboux_mail_domain d ON d.id = closed.domain_id
                 WHERE closed.sent_month > 0 OR closed.transfer_month_bytes > 0
                """,
                counter=SQL.identifier(self._table),
                month=SQL.identifier(self.env["emboux.mail.outbound.month"]._table),
            )
        )
        self.env["emboux.mail.outbound.month"].invalidate_model()

    @api.model
    def _cron_bounce_guard(self):
        """Turn the mail server's tripped bounce guard into the domain's
        outbound status, with a chatter entry and an activity; and tell
        webhooks, once a day, which domains reached a sending limit."""
        counters = self.sudo().search(
            [
                ("guard_tripped", "=", True),
                ("domain_id.outbound_status", "=", "active"),
            ]
        )
        for counter in counters:
            counter.domain_id._emboux_bounce_guard_tripped(counter)
        self._emboux_tell_limits_reached()

    @api.model
    def _emboux_tell_limits_reached(self):
        """A hard limit refused mail today, or a soft one let mail over it
        this month: the ``outbound.limit_reached`` event, once a day."""
        today = fields.Date.context_today(self)
        reached = self.sudo().search(
            [
                "|",
                ("refused_today", ">", 0),
                ("over_month", ">", 0),
                "|",
                ("limit_told_on", "=", False),
                ("limit_told_on", "<", today),
            ]
        )
        for counter in reached:
            domain = counter.domain_id
            self.env["emboux.mail.webhook.event"]._emboux_emit(
                "outbound.limit_reached",
                domain,
                outbound_daily_limit=domain.outbound_daily_limit,
                outbound_monthly_limit=domain.outbound_monthly_limit,
                outbound_sent_today=counter.sent_today,
                outbound_sent_month=counter.sent_month,
                refused_today=counter.refused_today,
                over_month=counter.over_month,
            )
        reached.write({"limit_told_on": today})
