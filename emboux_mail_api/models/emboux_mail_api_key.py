import logging

import psycopg2

from odoo import api, fields, models

_logger = logging.getLogger(__name__)


class EmbouxMailApiKey(models.Model):
    _inherit = "emboux.mail.api.key"

    usage_ids = fields.One2many("emboux.mail.api.usage", "key_id", string="Requests")
    usage_count = fields.Integer(
        string="Requests Count", compute="_compute_usage_count"
    )

    def _compute_usage_count(self):
        groups = self.env["emboux.mail.api.usage"]._read_group(
            [("key_id", "in", self.ids)], ["key_id"], ["__count"]
        )
        counts = {key.id: count for key, count in groups}
        for key in self:
            key.usage_count = counts.get(key.id, 0)

    @api.model
    def _emboux_record_use(self, registry, key_id, route, status):
        """Log one request of the key and stamp its ``last_used_at``, in a
        cursor of its own, once the request's transaction has ended.

        Two requests of one key ending together may conflict on
        ``last_used_at``: the later one keeps the stamp it sees, which is as
        recent, and the request log still gets its row."""
        with registry.cursor() as cr:
            cr.execute(
                "INSERT INTO emboux_mail_api_usage (key_id, used_at, route, status) "
                "VALUES (%s, now() at time zone 'utc', %s, %s)",
                [key_id, route, status],
            )
            try:
                with cr.savepoint(flush=False):
                    cr.execute(
                        "UPDATE emboux_mail_api_key "
                        "SET last_used_at = now() at time zone 'utc' WHERE id IN ("
                        "SELECT id FROM emboux_mail_api_key WHERE id = %s "
                        "FOR NO KEY UPDATE SKIP LOCKED)",
                        [key_id],
                        log_exceptions=False,
                    )
            except psycopg2.errors.SerializationFailure:
                _logger.debug("last_used_at of key %s stamped concurrently", key_id)
