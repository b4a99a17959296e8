from odoo import models
from odoo.tools import SQL

from ..services.mailserver import SCHEMA

VIEWS = {
    # every hosted domain whose name is proven (see emboux.mail.domain's
    # ``verified``), suspended ones included: Postfix refuses a suspended
    # domain's recipients at RCPT (refused_domains) but must still deliver
    # what it accepted just before the suspension, not relay it
    "domains": """
        SELECT d.name FROM emboux_mail_domain d WHERE d.verified IS TRUE
    """,
    # kept for mail servers configured before refused_domains existed
    "suspended_domains": """
        SELECT d.name FROM emboux_mail_domain d WHERE d.suspended IS TRUE
    """,
    # the domains whose recipients Postfix refuses at RCPT, and why
    "refused_domains": """
        SELECT d.name,
               CASE WHEN d.verified IS TRUE THEN 'Domain suspended'
                    ELSE 'Domain not verified' END AS reason
          FROM emboux_mail_domain d
         WHERE d.suspended IS TRUE OR d.verified IS NOT TRUE
    """,
    "mailboxes": """
        SELECT m.email, d.name AS domain,
               d.name || '/' || split_part(m.email, '@', 1) || '/' AS maildir,
               m.quota_mb, d.suspended IS TRUE AS suspended
          FROM emboux_mail_mailbox m
          JOIN emboux_mail_domain d ON d.id = m.domain_id
         WHERE d.verified IS TRUE
    """,
    # every mailbox is its own alias: Postfix looks the exact address up
    # before @domain, so a catch-all never swallows a real mailbox's mail
    "aliases": """
        SELECT a.source, a.destination
          FROM emboux_mail_alias a
          JOIN emboux_mail_domain d ON d.id = a.domain_id
         WHERE d.verified IS TRUE
        UNION ALL
        SELECT m.email, m.email
          FROM emboux_mail_mailbox m
          JOIN emboux_mail_domain d ON d.id = m.domain_id
         WHERE d.verified IS TRUE
    """,
    # every mailbox, for delivery of what Postfix accepted; only
    # login_allowed ones may log in (``suspended`` stays for Dovecot
    # configurations generated before login_allowed existed)
    "users": """
        SELECT m.email AS "user", m.password_hash AS password,
               d.name || '/' || split_part(m.email, '@', 1) || '/' AS maildir,
               '*:storage=' || coalesce(m.quota_mb, 0) || 'M' AS quota_rule,
               d.suspended IS TRUE AS suspended,
               d.verified IS TRUE AND d.suspended IS NOT TRUE AS login_allowed
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

    A domain is routed only once verified (its owner proved the name, or an
    operator vouched for it): a name anyone may type in must not capture
    that domain's mail or logins before then.

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
