"""Receipts of connected mode: proof that this database created an object
upstream, to recognise its own object when a create is sent again."""

from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

RECEIPT_TTL = timedelta(days=1)


class EmbouxMailSyncReceipt(models.Model):
    """Proof that this database created an object upstream, written with
    the change marked delivered; read only through SQL. Without it (the
    delivery could not record its answer), the object upstream is compared
    with ours instead (``emboux.mail.sync.matching``)."""

    _name = "emboux.mail.sync.receipt"
    _description = "Mail hosting: object created upstream"
    _log_access = False

    key = fields.Char(required=True, index=True)
    create_date = fields.Datetime(index=True)

    @api.autovacuum
    def _gc_expired(self):
        """A receipt only answers replays within ``RECEIPT_TTL``."""
        self.env.cr.execute(
            SQL(
                "DELETE FROM emboux_mail_sync_receipt WHERE create_date < %s",
                fields.Datetime.now() - RECEIPT_TTL,
            )
        )

    @api.model
    def _emboux_add(self, key):
        self.env.cr.execute(
            SQL(
                "INSERT INTO emboux_mail_sync_receipt (key, create_date) "
                "VALUES (%s, now() at time zone 'utc')",
                key,
            )
        )

    @api.model
    def _emboux_has(self, key):
        self.env.cr.execute(
            SQL(
                "SELECT 1 FROM emboux_mail_sync_receipt "
                "WHERE key = %s AND create_date > %s LIMIT 1",
                key,
                fields.Datetime.now() - RECEIPT_TTL,
            )
        )
        return bool(self.env.cr.fetchone())

    @api.model
    def _emboux_drop(self, key):
        """Forget the receipts of an object: its own key, or its key and a
        ``:`` suffix (a key's receipt names its token) — never another
        object whose name merely starts the same (``example.com.au``)."""
        self.env.cr.execute(
            SQL(
                "DELETE FROM emboux_mail_sync_receipt "
                "WHERE key = %s OR starts_with(key, %s)",
                key,
                key + ":",
            )
        )
