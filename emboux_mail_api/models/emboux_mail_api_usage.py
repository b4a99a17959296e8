from odoo import api, fields, models


class EmbouxMailApiUsage(models.Model):
    """One row per authenticated API request: the usage counters of a key.

    Append-only on purpose: a counter row updated by every request would make
    concurrent requests of one key conflict (Odoo runs in REPEATABLE READ).
    Rows are written after the request, from their own cursor, so a refused
    request is counted too and nothing here can fail the request itself.
    """

    _name = "emboux.mail.api.usage"
    _description = "EmBoux API Request"
    _order = "used_at desc, id desc"
    _log_access = False

    key_id = fields.Many2one(
        "emboux.mail.api.key", required=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one(related="key_id.company_id", store=True)
    used_at = fields.Datetime(required=True, index=True)
    route = fields.Char(required=True, help="Method and path template.")
    status = fields.Integer()

    @api.autovacuum
    def _gc_old_usage(self):
        """Keep a year of request history."""
        self.env.cr.execute(
            "DELETE FROM emboux_mail_api_usage "
            "WHERE used_at < (now() at time zone 'utc') - interval '366 days'"
        )
