from odoo import models
from odoo.tools import SQL

from ..services.mailserver import SCHEMA

VIEWS = {
    # every hosted domain, suspended ones included: Postfix refuses a
    # suspended domain's recipients at RCPT (suspended_domains) but must
    # still deliver what it accepted just before the suspension, not relay it
    "domains": """
        SELECT d.name FROM emboux_mail_domain d
    """,
    "suspended_domains": """
        SELECT d.name FROM emboux_mail_domain d WHERE d.suspended IS TRUE
    """,
    "mailboxes": """
        SELECT m.email, d.name AS domain,
               d.name || '/' || split_part(m.email, '@', 1) || '/' AS maildir,
               m.quota_mb, d.suspended IS TRUE AS suspended
          FROM emboux_mail_mailbox m
          JOIN emboux_mail_domain d ON d.id = m.domain_id
    """,
    # every mailbox is its own alias: Postfix looks the exact address up
    # before @domain, so a catch-all never swallows a real mailbox's mail
    "aliases": """
        SELECT a.source, a.destination FROM emboux_mail_alias a
        UNION ALL
        SELECT m.email, m.email FROM emboux_mail_mailbox m
    """,
    "users": """
        SELECT m.email AS "user", m.password_hash AS password,
               d.name || '/' || split_part(m.email, '@', 1) || '/' AS maildir,
               '*:storage=' || coalesce(m.quota_mb, 0) || 'M' AS quota_rule,
               d.suspended IS TRUE AS suspended
          FROM emboux_mail_mailbox m
          JOIN emboux_mail_domain d ON d.id = m.domain_id
    """,
}


class EmbouxMailServer(models.AbstractModel):
    """The SQL views Postfix and Dovecot read, in the schema
    ``emboux_mailserver``: re-created on every install and upgrade so that
    they follow the models. Each lookup is by a uniquely indexed column of
    the base tables (email, alias source, domain name), so it stays one
    index probe however many mailboxes there are.

    A read-only role gets SELECT on this schema only (see
    ``services/mailserver.py``); the views run with their owner's rights,
    so that role never needs the base tables.
    """

    _name = "emboux.mail.server"
    _description = "Mail server views"

    def init(self):
        cr = self.env.cr
        cr.execute(SQL("CREATE SCHEMA IF NOT EXISTS %s", SQL.identifier(SCHEMA)))
        for name, query in VIEWS.items():
            view = SQL.identifier(SCHEMA, name)
            cr.execute(SQL("DROP VIEW IF EXISTS %s", view))
            cr.execute(SQL("CREATE VIEW %s AS %s", view, SQL(query)))
