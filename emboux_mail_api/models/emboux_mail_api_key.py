import logging
from datetime import timedelta

import psycopg2

from odoo import api, fields, models

_logger = logging.getLogger(__name__)
# seconds a key's last_used_at stands before a request stamps it again
STAMP_EVERY = 60


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

    def _emboux_stamp_due(self):
        """Whether a request of the key should stamp ``last_used_at`` again:
        a stamp stands for a minute, so that a busy key does not write its
        own row at every request."""
        self.ensure_one()
        since = fields.Datetime.now() - timedelta(seconds=STAMP_EVERY)
        return not self.last_used_at or self.last_used_at <= since

    @api.model
    def _emboux_record_use(self, registry, key_id, route, status, stamp=True):
        """Log one request of the key and, with ``stamp``, stamp its
        ``last_used_at``, in a cursor of its own, once the request's
        transaction has ended.

        Two requests of one key ending together may conflict on
        ``last_used_at``: the later one keeps the stamp it sees, which is as
        recent, and the request log still gets its row."""
        with registry.cursor() as cr:
            cr.execute(
                "INSERT INTO emboux_mail_api_usage (key_id, used_at, route, status) "
                "VALUES (%s, now() at time zone 'utc', %s, %s)",
                [key_id, route, status],
            )
            if not stamp:
                return
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
