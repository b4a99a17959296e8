"""Connected mode used to keep tenant tokens in clear (``upstream_token``);
they are now kept encrypted with the server's EMBOUX_SECRET_KEY. Encrypt
them before the clear column goes; without a key they cannot be kept, and
the keys concerned need their token set again."""

import logging
import os

from odoo.tools import SQL, config

from odoo.addons.emboux_mail.services import encryption

_logger = logging.getLogger(__name__)
TABLES = ("emboux_mail_api_key", "emboux_mail_sync_event")


def migrate(cr, version):
    if not version:
        return
    secret = os.environ.get("EMBOUX_SECRET_KEY") or config.get("emboux_secret_key")
    for table in TABLES:
        cr.execute(
            "SELECT 1 FROM information_schema.columns "
            "WHERE table_name = %s AND column_name = 'upstream_token'",
            [table],
        )
        if not cr.fetchone():
            continue
        name = SQL.identifier(table)
        cr.execute(
            SQL(
                "ALTER TABLE %s ADD COLUMN IF NOT EXISTS "
                "upstream_token_encrypted varchar",
                name,
            )
        )
        cr.execute(
            SQL(
                "SELECT id, upstream_token FROM %s "
                "WHERE upstream_token IS NOT NULL AND upstream_token != ''",
                name,
            )
        )
        rows = cr.fetchall()
        if rows and not secret:
            _logger.warning(
                "%s tenant token(s) in %s are dropped: set EMBOUX_SECRET_KEY to "
                "keep them encrypted, or set those keys' tokens again",
                len(rows),
                table,
            )
            continue
        for row_id, token in rows:
            cr.execute(
                SQL(
                    "UPDATE %s SET upstream_token_encrypted = %s WHERE id = %s",
                    name,
                    encryption.encrypt(secret, token),
                    row_id,
                )
            )
