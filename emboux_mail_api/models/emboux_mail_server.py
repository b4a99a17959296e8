from odoo import api, models
from odoo.tools import SQL

from odoo.addons.emboux_mail.models.emboux_mail_outbound_counter import (
    BOUNCE_MIN_VOLUME,
    BOUNCE_RATE_LIMIT,
)

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
               d.verified IS TRUE AND d.suspended IS NOT TRUE AS login_allowed,
               CASE WHEN d.verified IS NOT TRUE
                    THEN 'Domain not verified: ' || d.name
                    WHEN d.suspended IS TRUE
                    THEN 'Domain suspended: ' || d.name
               END AS login_refusal
          FROM emboux_mail_mailbox m
          JOIN emboux_mail_domain d ON d.id = m.domain_id
    """,
    # who may send as whom (Postfix's smtpd_sender_login_maps): a mailbox as
    # itself, and as an alias pointing at it from a domain of the same
    # tenant; a catch-all is nobody's sender address. Suspended and
    # unverified domains are listed: the policy service refuses their mail
    # with the reason, which a login refusal would not tell.
    "senders": """
        SELECT m.email AS sender, m.email AS login
          FROM emboux_mail_mailbox m
        UNION ALL
        SELECT a.source, m.email
          FROM emboux_mail_alias a
          JOIN emboux_mail_domain ad ON ad.id = a.domain_id
          JOIN emboux_mail_mailbox m ON m.email = a.destination
          JOIN emboux_mail_domain md ON md.id = m.domain_id
         WHERE a.source NOT LIKE '@%%'
           AND (ad.id = md.id OR ad.partner_id = md.partner_id)
    """,
    # the retention job (services/retention.py): every mailbox of a domain
    # that deletes its old mail, and after how many days
    "retention": """
        SELECT m.email AS "user", d.name AS domain, d.retention_days
          FROM emboux_mail_mailbox m
          JOIN emboux_mail_domain d ON d.id = m.domain_id
         WHERE d.retention_days > 0
    """,
    # OpenDKIM's KeyTable: label -> signing domain, selector, private key
    "dkim_keys": """
        SELECT k.id::text AS id, d.name AS domain_name, k.selector, k.private_key
          FROM emboux_mail_dkim_key k
          JOIN emboux_mail_domain d ON d.id = k.domain_id
         WHERE k.active IS TRUE
    """,
    # OpenDKIM's SigningTable: sender domain -> label; a subdomain of a
    # wildcard signs with its parent's key (d= the parent)
    "dkim_signing": """
        SELECT d.name AS author, k.id::text AS key_id
          FROM emboux_mail_domain d
          LEFT JOIN emboux_mail_domain p
                 ON p.id = d.parent_id AND p.is_wildcard IS TRUE
          JOIN emboux_mail_dkim_key k
            ON k.domain_id = coalesce(p.id, d.id) AND k.active IS TRUE
         WHERE d.verified IS TRUE AND d.suspended IS NOT TRUE
    """,
}

# What the policy service records per message and per delivery result: the
# key of each makes a retried request or a re-read log line count once.
# Mail-server data, not Odoo records: rows older than a week are dropped
# (Postfix gives up on a message after 5 days).
TABLES = {
    "outbound_message": """
        queue_id text PRIMARY KEY,
        domain_id integer,
        allowed boolean,
        code text,
        reason text,
        sent_today integer,
        sent_month integer,
        created_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
    """,
    "outbound_delivery": """
        queue_id text NOT NULL,
        recipient text NOT NULL,
        kind text NOT NULL,
        created_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
        PRIMARY KEY (queue_id, recipient, kind)
    """,
}

# The verdict on one more message of a domain (``d``) whose counter is ``c``
# (NULL before its first message): a refusal's SMTP code and text, or an
# allowed message with the reason a soft limit was crossed.
VERDICT = """
CREATE OR REPLACE FUNCTION emboux_mailserver.outbound_verdict(
    d emboux_mail_domain, c emboux_mail_outbound_counter, p_size bigint,
    OUT allowed boolean, OUT code text, OUT reason text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, public AS $fn$
DECLARE
    daily integer := coalesce(d.outbound_daily_limit, 0);
    monthly integer := coalesce(d.outbound_monthly_limit, 0);
    transfer bigint := coalesce(d.transfer_monthly_mb, 0)::bigint * 1048576;
BEGIN
    allowed := false;
    code := '554 5.7.1';
    IF d.verified IS NOT TRUE THEN
        reason := 'Domain not verified: ' || d.name
                  || ' cannot send mail until its owner proves control of it';
    ELSIF d.suspended IS TRUE THEN
        reason := 'Domain suspended: ' || d.name || ' cannot send mail';
    ELSIF d.outbound_status = 'suspended' OR c.guard_tripped IS TRUE THEN
        reason := 'Outbound mail suspended for ' || d.name;
    ELSE
        IF daily > 0 AND coalesce(c.sent_today, 0) >= daily THEN
            reason := 'Daily sending limit reached for ' || d.name
                      || ' (' || daily
                      || CASE WHEN daily = 1 THEN ' message)' ELSE ' messages)' END;
        ELSIF monthly > 0 AND coalesce(c.sent_month, 0) >= monthly THEN
            reason := 'Monthly sending limit reached for ' || d.name
                      || ' (' || monthly
                      || CASE WHEN monthly = 1 THEN ' message)' ELSE ' messages)' END;
        ELSIF transfer > 0
              AND coalesce(c.transfer_month_bytes, 0) + coalesce(p_size, 0) > transfer
        THEN
            reason := 'Monthly transfer limit reached for ' || d.name
                      || ' (' || d.transfer_monthly_mb || ' MB)';
        END IF;
        -- soft: the message goes and its overage is billed
        allowed := reason IS NULL OR d.outbound_enforcement = 'soft';
        code := CASE WHEN allowed THEN NULL ELSE '450 4.7.1' END;
    END IF;
END
$fn$;
"""

VERDICT_SIGNATURE = (
    "emboux_mailserver.outbound_verdict("
    "emboux_mail_domain, emboux_mail_outbound_counter, bigint)"
)

FUNCTIONS = {
    # RCPT TO: refuse early what END-OF-MESSAGE would refuse; counts nothing
    "emboux_mailserver.outbound_check(text, bigint)": """
CREATE OR REPLACE FUNCTION emboux_mailserver.outbound_check(
    p_sender text, p_size bigint,
    OUT allowed boolean, OUT code text, OUT reason text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
AS $fn$
DECLARE
    d emboux_mail_domain;
    c emboux_mail_outbound_counter;
BEGIN
    SELECT * INTO d FROM emboux_mail_domain
     WHERE name = lower(substring(p_sender from '[^@]*$'));
    IF NOT FOUND THEN
        SELECT false, '554 5.7.1', 'Sender domain is not hosted here'
          INTO allowed, code, reason;
        RETURN;
    END IF;
    SELECT * INTO c FROM emboux_mail_outbound_counter WHERE domain_id = d.id;
    SELECT v.allowed, v.code, v.reason INTO allowed, code, reason
      FROM emboux_mailserver.outbound_verdict(d, c, p_size) v;
END
$fn$;
""",
    # END-OF-MESSAGE (or the API's increment): the verdict and the count in
    # one transaction, under the counter's row lock, so that concurrent
    # messages never pass a hard limit. A queue id seen before answers its
    # first verdict again and counts nothing (Postfix retries a request whose
    # answer it lost). As few statements as possible run under the lock:
    # every message of a domain waits for it. ``next_*``: the verdict on the
    # domain's next message, as outbound_check would give it now.
    "emboux_mailserver.outbound_count(text, text, integer, bigint)": """
CREATE OR REPLACE FUNCTION emboux_mailserver.outbound_count(
    p_queue_id text, p_sender text, p_recipients integer, p_size bigint,
    OUT allowed boolean, OUT code text, OUT reason text,
    OUT sent_today integer, OUT sent_month integer,
    OUT next_allowed boolean, OUT next_code text, OUT next_reason text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public
AS $fn$
DECLARE
    d emboux_mail_domain;
    c emboux_mail_outbound_counter;
    counted integer;
BEGIN
    IF p_queue_id IS NOT NULL THEN
        SELECT m.allowed, m.code, m.reason, m.sent_today, m.sent_month
          INTO allowed, code, reason, sent_today, sent_month
          FROM emboux_mailserver.outbound_message m
         WHERE m.queue_id = p_queue_id;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    SELECT * INTO d FROM emboux_mail_domain
     WHERE name = lower(substring(p_sender from '[^@]*$'));
    IF NOT FOUND THEN
        SELECT false, '554 5.7.1', 'Sender domain is not hosted here', 0, 0
          INTO allowed, code, reason, sent_today, sent_month;
        SELECT allowed, code, reason INTO next_allowed, next_code, next_reason;
    ELSE
        SELECT * INTO c FROM emboux_mail_outbound_counter
         WHERE domain_id = d.id FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO emboux_mail_outbound_counter (
                domain_id, sent_today, sent_month, refused_today, over_month,
                recipients_month, transfer_month_bytes, delivered_count,
                bounce_count, complaint_count, guard_tripped)
            VALUES (d.id, 0, 0, 0, 0, 0, 0, 0, 0, 0, false)
            ON CONFLICT (domain_id) DO NOTHING;
            SELECT * INTO c FROM emboux_mail_outbound_counter
             WHERE domain_id = d.id FOR UPDATE;
        END IF;
        SELECT v.allowed, v.code, v.reason INTO allowed, code, reason
          FROM emboux_mailserver.outbound_verdict(d, c, p_size) v;
        counted := allowed::integer;
        UPDATE emboux_mail_outbound_counter u
           SET sent_today = u.sent_today + counted,
               sent_month = u.sent_month + counted,
               refused_today = u.refused_today + 1 - counted,
               over_month = u.over_month
                   + CASE WHEN allowed AND reason IS NOT NULL THEN 1 ELSE 0 END,
               recipients_month = u.recipients_month
                   + counted * coalesce(p_recipients, 1),
               transfer_month_bytes = u.transfer_month_bytes
                   + counted * coalesce(p_size, 0),
               last_sent_at = CASE WHEN allowed THEN now() AT TIME ZONE 'UTC'
                                   ELSE u.last_sent_at END
         WHERE u.id = c.id
     RETURNING u.* INTO c;
        sent_today := c.sent_today;
        sent_month := c.sent_month;
        -- what the domain's next message would get: the policy service
        -- answers the next RCPT with it, without asking again
        SELECT v.allowed, v.code, v.reason
          INTO next_allowed, next_code, next_reason
          FROM emboux_mailserver.outbound_verdict(d, c, 0) v;
    END IF;
    IF p_queue_id IS NOT NULL THEN
        -- the same message counted meanwhile by a request that committed
        -- first makes this insert fail, and this count with it
        INSERT INTO emboux_mailserver.outbound_message (
            queue_id, domain_id, allowed, code, reason, sent_today, sent_month)
        VALUES (p_queue_id, d.id, allowed, code, reason, sent_today, sent_month);
    END IF;
END
$fn$;
""",
    # a delivery result of a counted message, read from Postfix's log:
    # ``sent``, ``bounced`` or ``complaint``. Crossing the bounce rate
    # (Settings) over the minimum volume trips the guard at once.
    "emboux_mailserver.outbound_delivery(text, text, text)": """
CREATE OR REPLACE FUNCTION emboux_mailserver.outbound_delivery(
    p_queue_id text, p_recipient text, p_status text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public
AS $fn$
DECLARE
    domain integer;
    c emboux_mail_outbound_counter;
    rate_limit double precision;
    min_volume integer;
BEGIN
    SELECT m.domain_id INTO domain FROM emboux_mailserver.outbound_message m
     WHERE m.queue_id = p_queue_id AND m.allowed IS TRUE;
    IF domain IS NULL OR p_status NOT IN ('sent', 'bounced', 'complaint') THEN
        RETURN false;
    END IF;
    INSERT INTO emboux_mailserver.outbound_delivery (queue_id, recipient, kind)
    VALUES (p_queue_id, lower(p_recipient),
            CASE WHEN p_status = 'complaint' THEN 'complaint' ELSE 'delivery' END)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE emboux_mail_outbound_counter u
       SET delivered_count = u.delivered_count + (p_status <> 'complaint')::integer,
           bounce_count = u.bounce_count + (p_status = 'bounced')::integer,
           complaint_count = u.complaint_count + (p_status = 'complaint')::integer
     WHERE u.domain_id = domain
 RETURNING u.* INTO c;
    SELECT coalesce(max(value) FILTER (WHERE key = 'emboux_mail.bounce_rate_limit'),
                    '{rate}')::double precision,
           coalesce(max(value) FILTER (WHERE key = 'emboux_mail.bounce_min_volume'),
                    '{volume}')::integer
      INTO rate_limit, min_volume
      FROM ir_config_parameter
     WHERE key IN ('emboux_mail.bounce_rate_limit', 'emboux_mail.bounce_min_volume');
    IF c.guard_tripped IS NOT TRUE AND rate_limit > 0
       AND c.delivered_count >= min_volume
       AND 100.0 * c.bounce_count / c.delivered_count >= rate_limit THEN
        UPDATE emboux_mail_outbound_counter SET guard_tripped = true
         WHERE id = c.id;
    END IF;
    RETURN true;
END
$fn$;
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
        for name, columns in TABLES.items():
            table = SQL.identifier(SCHEMA, name)
            cr.execute(SQL("CREATE TABLE IF NOT EXISTS %s (%s)", table, SQL(columns)))
        defaults = {
            "{rate}": str(BOUNCE_RATE_LIMIT[1]),
            "{volume}": str(BOUNCE_MIN_VOLUME[1]),
        }
        for body in (VERDICT, *FUNCTIONS.values()):
            for placeholder, value in defaults.items():
                body = body.replace(placeholder, value)
            cr.execute(SQL(body))
        # the policy service's role is granted EXECUTE by name; nobody else
        # may call them
        for signature in (*FUNCTIONS, VERDICT_SIGNATURE):
            cr.execute(SQL("REVOKE ALL ON FUNCTION %s FROM PUBLIC", SQL(signature)))

    @api.model
    def _emboux_purge(self):
        """Drop the policy service's records older than a week."""
        for name in TABLES:
            self.env.cr.execute(
                SQL(
                    "DELETE FROM %s WHERE created_at < "
                    "(now() AT TIME ZONE 'UTC') - interval '7 days'",
                    SQL.identifier(SCHEMA, name),
                )
            )
