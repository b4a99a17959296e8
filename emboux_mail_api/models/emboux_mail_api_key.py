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
        ``last_used_at``, in a cursor of its own: for a request whose
        transaction was rolled back."""
        with registry.cursor() as cr:
            self._emboux_log_use(cr, key_id, route, status)
            if stamp:
                self._emboux_stamp_use(cr, key_id)

    @api.model
    def _emboux_log_use(self, cr, key_id, route, status):
        """One row of the key's request log, written with ``cr``; its id."""
        cr.execute(
            "INSERT INTO emboux_mail_api_usage (key_id, used_at, route, status) "
            "VALUES (%s, now() at time zone 'utc', %s, %s) RETURNING id",
            [key_id, route, status],
        )
        return cr.fetchone()[0]

    @api.model
    def _emboux_restate_use(self, registry, usage_id, status):
        """Give a logged request the status it finally answered (its change,
        committed, was then refused upstream), in a cursor of its own."""
        with registry.cursor() as cr:
            cr.execute(
                "UPDATE emboux_mail_api_usage SET status = %s WHERE id = %s",
                [status, usage_id],
            )

    @api.model
    def _emboux_stamp_later(self, registry, key_id):
        """Stamp the key's ``last_used_at`` in a cursor of its own, once the
        request that used it has committed."""
        with registry.cursor() as cr:
            self._emboux_stamp_use(cr, key_id)

    @api.model
    def _emboux_stamp_use(self, cr, key_id):
        """Stamp the key's ``last_used_at`` with ``cr``. Two requests of one
        key ending together may conflict on it: the later one keeps the
        stamp it sees, which is as recent."""
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
