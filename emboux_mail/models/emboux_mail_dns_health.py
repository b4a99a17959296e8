from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from .emboux_mail_domain import DNS_STATES

KEEP_DAYS = ("emboux_mail.dns_health_keep_days", 90)


class EmbouxMailDnsHealth(models.Model):
    """A domain's DNS health on one day, as its last check of the day found
    it: the history the health-over-time reports read. One row per domain
    and day keeps the table bounded however often domains are checked."""

    _name = "emboux.mail.dns.health"
    _description = "Mail Domain DNS Health History"
    _order = "date desc, domain_id"
    _log_access = False

    domain_id = fields.Many2one(
        "emboux.mail.domain", required=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one("res.company", required=True, index=True)
    partner_id = fields.Many2one(
        "res.partner", string="Customer", help="The domain's owner on that day."
    )
    date = fields.Date(required=True, index=True)
    state = fields.Selection(
        [state for state in DNS_STATES if state[0] != "unchecked"],
        string="DNS Health",
        required=True,
    )
    checked_at = fields.Datetime(string="Checked On", required=True)

    _sql_constraints = [
        ("domain_date_uniq", "unique(domain_id, date)", "One row per domain and day.")
    ]

    @api.model
    def _emboux_record(self, domains):
        """Store the health ``domains`` have now as their health of the day
        they were checked. An upsert: a check running beside another one
        (the scheduled one, a button) cannot fail on the unique row."""
        if not domains:
            return
        domains.flush_recordset(["dns_state", "dns_checked_at", "partner_id"])
        self.env.cr.execute(
            SQL(
                """
                INSERT INTO emboux_mail_dns_health
                       (domain_id, company_id, partner_id, date, state, checked_at)
                SELECT id, company_id, partner_id, dns_checked_at::date, dns_state,
                       dns_checked_at
                  FROM emboux_mail_domain
                 WHERE id IN %s AND dns_checked_at IS NOT NULL
                   AND dns_state != 'unchecked'
                ON CONFLICT (domain_id, date) DO UPDATE
                   SET state = EXCLUDED.state,
                       checked_at = EXCLUDED.checked_at,
                       partner_id = EXCLUDED.partner_id
                """,
                tuple(domains.ids),
            )
        )
        self.invalidate_model()

    @api.model
    def _emboux_gc(self):
        """Forget the days older than the retention (system parameter
        ``emboux_mail.dns_health_keep_days``; 0 keeps them all)."""
        params = self.env["ir.config_parameter"].sudo()
        days = int(params.get_param(KEEP_DAYS[0], KEEP_DAYS[1]))
        if days <= 0:
            return 0
        limit = fields.Date.today() - timedelta(days=days)
        self.env.cr.execute(
            SQL("DELETE FROM emboux_mail_dns_health WHERE date < %s", limit)
        )
        self.invalidate_model()
        return self.env.cr.rowcount
