"""Configuration that points Postfix, Dovecot and OpenDKIM at an Odoo
database.

They read the SQL views that ``emboux_mail_api`` keeps in the schema
``emboux_mailserver`` (see models/emboux_mail_server.py), through a
PostgreSQL role that may read those views and nothing else. The policy
service (``policyd.py``) logs in with a second role, which may only run the
functions that count outgoing mail. This module renders both roles' SQL and
the servers' configuration files; it imports nothing but the standard
library, so it runs on a mail host without Odoo:

    python3 emboux_mail_api/services/mailserver.py --dbname odoo --out /tmp/conf \\
        --db-host 10.0.0.5 --role mailserver --password '...' \\
        --policy-password '...'

prints the SQL for a database superuser and writes ``postfix/``,
``dovecot/``, ``opendkim/`` and ``retention/`` below ``--out``.

Dovecot reports each mailbox's storage (its ``quota_clone`` plugin, through
its SQL dict) into the one table the read-only role may also write. The
retention job (``retention.py``) runs daily from the systemd timer or the
cron line written to ``retention/``.
"""

import argparse
import dataclasses
import os
import sys
from pathlib import Path

SCHEMA = "emboux_mailserver"
# emboux_mail's table of what each mailbox uses: Dovecot writes it
USAGE_TABLE = "emboux_mail_mailbox_usage"


@dataclasses.dataclass
class MailServerSettings:
    dbname: str
    role: str = "emboux_mailserver"
    password: str = ""
    db_host: str = "127.0.0.1"
    db_port: int = 5432
    odoo_role: str = "emboux"  # owner of the views (Odoo's own role)
    hostname: str = "mail.example.com"
    smtp_address: str = "0.0.0.0:25"
    lmtp_port: int = 24
    imap_port: int = 143
    listen: str = "*"
    run_dir: str = "/var/lib/emboux-mail"  # queues, sockets, logs of the instances
    mail_root: str = "/var/vmail"  # maildirs: <mail_root>/<domain>/<local>/
    vmail_user: str = "vmail"  # owns the maildirs; uid and gid below
    vmail_uid: int = 5000
    vmail_gid: int = 5000
    # submission (mail clients send through it): STARTTLS, then SASL
    # through Dovecot, then the policy service and the DKIM signer
    submission_address: str = "0.0.0.0:587"
    tls_cert: str = "/etc/ssl/certs/ssl-cert-snakeoil.pem"
    tls_key: str = "/etc/ssl/private/ssl-cert-snakeoil.key"
    policy_service: str = "inet:127.0.0.1:10040"
    policy_timeout: str = "10s"
    policy_role: str = "emboux_policy"  # may run the counting functions only
    policy_password: str = ""
    dkim_port: int = 8891  # OpenDKIM's milter socket, on loopback
    relayhost: str = ""  # where outgoing mail goes; empty: straight to the MX
    retention_time: str = "03:17"  # when the daily retention job runs
    python: str = "/usr/bin/python3"  # runs the retention job
    postfix_extra: dict = dataclasses.field(default_factory=dict)


def _literal(value):
    return "'" + str(value).replace("'", "''") + "'"


def role_sql(settings):
    """SQL for a superuser: the read-only role, allowed the views only."""
    s, role = settings, f'"{settings.role}"'
    return "\n".join(
        [
            "DO $$ BEGIN",
            "  IF NOT EXISTS (SELECT FROM pg_roles",
            f"                 WHERE rolname = {_literal(s.role)}) THEN",
            f"    CREATE ROLE {role} LOGIN NOINHERIT;",
            "  END IF;",
            "END $$;",
            f"ALTER ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
            f"NOINHERIT PASSWORD {_literal(s.password)};",
            f"ALTER ROLE {role} SET default_transaction_read_only = on;",
            f'GRANT CONNECT ON DATABASE "{s.dbname}" TO {role};',
            f"GRANT USAGE ON SCHEMA {SCHEMA} TO {role};",
            f"GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO {role};",
            # Dovecot's quota_clone writes what each mailbox uses
            f"GRANT SELECT, INSERT, UPDATE ON {USAGE_TABLE} TO {role};",
            # views that a module upgrade re-creates get the grant again
            f'ALTER DEFAULT PRIVILEGES FOR ROLE "{s.odoo_role}" IN SCHEMA {SCHEMA} '
            f"GRANT SELECT ON TABLES TO {role};",
            *_policy_role_sql(s),
        ]
    )


# what the policy service calls (see models/emboux_mail_server.py)
POLICY_FUNCTIONS = (
    "outbound_check(text, bigint)",
    "outbound_count(text, text, integer, bigint)",
    "outbound_delivery(text, text, text)",
)


def _policy_role_sql(settings):
    if not settings.policy_password:
        return []
    return policy_role_sql(
        settings.policy_role, settings.policy_password, settings.dbname
    ).splitlines()


def policy_role_sql(role, password, dbname):
    """SQL for a superuser: the policy service's role, which may run the
    counting functions (they write with their owner's rights) and read
    nothing."""
    quoted = '"' + role.replace('"', '""') + '"'
    return "\n".join(
        [
            "DO $$ BEGIN",
            "  IF NOT EXISTS (SELECT FROM pg_roles",
            f"                 WHERE rolname = {_literal(role)}) THEN",
            f"    CREATE ROLE {quoted} LOGIN NOINHERIT;",
            "  END IF;",
            "END $$;",
            f"ALTER ROLE {quoted} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
            f"NOINHERIT PASSWORD {_literal(password)};",
            f'GRANT CONNECT ON DATABASE "{dbname}" TO {quoted};',
            f"GRANT USAGE ON SCHEMA {SCHEMA} TO {quoted};",
            *(
                f"GRANT EXECUTE ON FUNCTION {SCHEMA}.{name} TO {quoted};"
                for name in POLICY_FUNCTIONS
            ),
        ]
    )


def policy_dsn(settings):
    """The connection string of the policy service (``policyd.py --dsn``)."""
    s = settings
    return (
        f"host={s.db_host} port={s.db_port} dbname={s.dbname} "
        f"user={s.policy_role} password={s.policy_password}"
    )


def mail_dsn(settings):
    """The read-only role's connection string, for the retention job."""
    s = settings
    return (
        f"host={s.db_host} port={s.db_port} dbname={s.dbname} "
        f"user={s.role} password={s.password}"
    )


def _pgsql_map(settings, query):
    return (
        f"hosts = {settings.db_host}:{settings.db_port}\n"
        f"user = {settings.role}\n"
        f"password = {settings.password}\n"
        f"dbname = {settings.dbname}\n"
        f"query = {query}\n"
    )


def postfix_files(settings):
    """``{file name: content}`` of a Postfix instance (``postfix -c DIR``)."""
    s = settings
    conf = Path(s.run_dir) / "postfix"
    view = f"FROM {SCHEMA}."
    maps = {
        "pgsql-domains.cf": f"SELECT 1 {view}domains WHERE name = '%s'",
        "pgsql-mailboxes.cf": f"SELECT maildir {view}mailboxes WHERE email = '%s'",
        # mailboxes map to themselves there, so a catch-all never takes
        # the mail of a real mailbox (the exact address is looked up first)
        "pgsql-aliases.cf": f"SELECT destination {view}aliases WHERE source = '%s'",
        # who may send as an address: its mailbox, or the mailbox an alias
        # of the same tenant points at (the policy service refuses suspended
        # and unverified domains with their own text)
        "pgsql-senders.cf": f"SELECT login {view}senders WHERE sender = '%s'",
        # suspended and unverified domains (the file keeps its first name)
        "pgsql-suspended.cf": (
            "SELECT 'REJECT 5.7.1 ' || reason "
            f"FROM {SCHEMA}.refused_domains WHERE name = '%d'"
        ),
    }
    main = {
        "compatibility_level": "3.6",
        "queue_directory": f"{conf}/queue",
        "data_directory": f"{conf}/data",
        "myhostname": s.hostname,
        "mydestination": "",
        "inet_interfaces": "all" if s.listen == "*" else s.listen,
        "inet_protocols": "ipv4",
        "mynetworks": "127.0.0.0/8",
        "smtputf8_enable": "no",
        "biff": "no",
        "maillog_file": f"{conf}/maillog",
        "maillog_file_prefixes": f"/var, /dev/stdout, {conf}",
        "virtual_mailbox_domains": f"pgsql:{conf}/pgsql-domains.cf",
        "virtual_mailbox_maps": f"pgsql:{conf}/pgsql-mailboxes.cf",
        "virtual_alias_maps": f"pgsql:{conf}/pgsql-aliases.cf",
        "virtual_transport": f"lmtp:inet:127.0.0.1:{s.lmtp_port}",
        # an MX for the hosted domains, not a relay (submission is elsewhere).
        # The refusal comes first: an unverified domain is not a mailbox
        # domain, so reject_unauth_destination would only say "Relay access
        # denied". That map only ever answers REJECT, never OK (which here
        # would allow relaying).
        "smtpd_relay_restrictions": (
            f"check_recipient_access pgsql:{conf}/pgsql-suspended.cf, "
            "reject_unauth_destination"
        ),
        "alias_maps": "",
        "alias_database": "",
        # queue ids unique over time: the policy service keys on them
        "enable_long_queue_ids": "yes",
        "relayhost": s.relayhost,
        # submission: see the service in master.cf
        "emboux_submission_client_restrictions": "permit_sasl_authenticated, reject",
        "emboux_submission_recipient_restrictions": (
            "reject_non_fqdn_recipient, reject_sender_login_mismatch, "
            f"check_policy_service {s.policy_service}, "
            "permit_sasl_authenticated, reject"
        ),
        # counted once per message, when its size and recipients are known
        "emboux_submission_data_restrictions": (
            f"check_policy_service {s.policy_service}"
        ),
        "smtpd_sender_login_maps": f"pgsql:{conf}/pgsql-senders.cf",
        # a policy service that does not answer pauses sending, visibly
        "smtpd_policy_service_timeout": s.policy_timeout,
        "smtpd_policy_service_try_limit": "2",
        "smtpd_policy_service_default_action": (
            "451 4.3.5 Sending is paused: the outbound policy service does not "
            "answer, try again later"
        ),
        "smtpd_tls_cert_file": s.tls_cert,
        "smtpd_tls_key_file": s.tls_key,
        "smtpd_sasl_type": "dovecot",
        # Dovecot's auth socket, relative to the queue directory
        "smtpd_sasl_path": "private/auth",
        "milter_default_action": "tempfail",
        **s.postfix_extra,
    }
    main_cf = "".join(f"{key} = {value}\n" for key, value in main.items())
    submission = " ".join(
        f"-o {name}={value}"
        for name, value in (
            ("syslog_name", "postfix/submission"),
            ("smtpd_tls_security_level", "encrypt"),
            ("smtpd_tls_auth_only", "yes"),
            ("smtpd_sasl_auth_enable", "yes"),
            ("smtpd_client_restrictions", "$emboux_submission_client_restrictions"),
            ("smtpd_relay_restrictions", "permit_sasl_authenticated,reject"),
            (
                "smtpd_recipient_restrictions",
                "$emboux_submission_recipient_restrictions",
            ),
            (
                "smtpd_end_of_data_restrictions",
                "$emboux_submission_data_restrictions",
            ),
            ("smtpd_milters", f"inet:127.0.0.1:{s.dkim_port}"),
            ("milter_macro_daemon_name", "ORIGINATING"),
        )
    )
    master_cf = (
        f"{s.smtp_address} inet n - n - - smtpd\n"
        f"{s.submission_address} inet n - n - - smtpd {submission}\n"
        "pickup    unix  n       -       n       60      1       pickup\n"
        "cleanup   unix  n       -       n       -       0       cleanup\n"
        "qmgr      unix  n       -       n       300     1       qmgr\n"
        "tlsmgr    unix  -       -       n       1000?   1       tlsmgr\n"
        "rewrite   unix  -       -       n       -       -       trivial-rewrite\n"
        "bounce    unix  -       -       n       -       0       bounce\n"
        "defer     unix  -       -       n       -       0       bounce\n"
        "trace     unix  -       -       n       -       0       bounce\n"
        "verify    unix  -       -       n       -       1       verify\n"
        "flush     unix  n       -       n       1000?   0       flush\n"
        "proxymap  unix  -       -       n       -       -       proxymap\n"
        "smtp      unix  -       -       n       -       -       smtp\n"
        "relay     unix  -       -       n       -       -       smtp\n"
        "showq     unix  n       -       n       -       -       showq\n"
        "error     unix  -       -       n       -       -       error\n"
        "retry     unix  -       -       n       -       -       error\n"
        "discard   unix  -       -       n       -       -       discard\n"
        "lmtp      unix  -       -       n       -       -       lmtp\n"
        "anvil     unix  -       -       n       -       1       anvil\n"
        "scache    unix  -       -       n       -       1       scache\n"
        "postlog   unix-dgram n  -       n       -       1       postlogd\n"
    )
    files = {"main.cf": main_cf, "master.cf": master_cf}
    files.update({name: _pgsql_map(s, query) for name, query in maps.items()})
    return files


def opendkim_files(settings):
    """``{file name: content}`` of an OpenDKIM signer (``opendkim -x FILE``)
    reading its key and signing tables from the views (``dsn:pgsql``,
    Debian's libopendbx1-pgsql)."""
    s = settings
    run = Path(s.run_dir) / "opendkim"
    dsn = (
        f"dsn:pgsql://{s.role}:{s.password}@{s.db_port}+{s.db_host}/{s.dbname}"
        f"/table={SCHEMA}."
    )
    conf = {
        "Mode": "s",
        "Socket": f"inet:{s.dkim_port}@127.0.0.1",
        "PidFile": f"{run}/opendkim.pid",
        "UserID": "opendkim",
        "Syslog": "yes",
        "Canonicalization": "relaxed/simple",
        # a copy of From added on the way cannot pass as signed
        "OversignHeaders": "From",
        # mail of the submission service is the mail to sign
        "MTA": "ORIGINATING",
        "KeyTable": (
            f"{dsn}dkim_keys?keycol=id?datacol=domain_name,selector,private_key"
        ),
        "SigningTable": f"{dsn}dkim_signing?keycol=author?datacol=key_id",
    }
    return {"opendkim.conf": "".join(f"{k} {v}\n" for k, v in conf.items())}


def dovecot_files(settings):
    """``{file name: content}`` of a Dovecot instance (``dovecot -c FILE``)."""
    s = settings
    run = Path(s.run_dir) / "dovecot"
    connect = mail_dsn(s)
    sql = (
        "driver = pgsql\n"
        f"connect = {connect}\n"
        "default_pass_scheme = SHA512-CRYPT\n"
        # mailboxes of a suspended or unverified domain cannot log in, and
        # whoever knows the password is told why; Postfix's SASL ignores
        # nologin, so submission lets them in and the policy service refuses
        # each recipient with the reason. Mail accepted before a suspension
        # is still delivered (the user query ignores it).
        'password_query = SELECT "user", password, '
        "CASE WHEN login_allowed THEN NULL ELSE 'Y' END AS nologin, "
        f"login_refusal AS reason FROM {SCHEMA}.users "
        "WHERE \"user\" = '%u'\n"
        "user_query = SELECT "
        f"'{s.mail_root}/' || maildir AS home, "
        f"'maildir:{s.mail_root}/' || maildir AS mail, "
        f"{s.vmail_uid} AS uid, {s.vmail_gid} AS gid, quota_rule "
        f"FROM {SCHEMA}.users WHERE \"user\" = '%u'\n"
        f'iterate_query = SELECT "user" FROM {SCHEMA}.users\n'
    )
    conf = f"""protocols = imap lmtp
listen = {s.listen}
base_dir = {run}/run
state_dir = {run}/state
log_path = {run}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = {s.vmail_uid}
mail_uid = {s.vmail_uid}
mail_gid = {s.vmail_gid}
mail_plugins = $mail_plugins quota quota_clone
# the retention job deletes by saved date: kept from the delivery on (a
# maildir's own would be the time a client first opened the message)
mail_always_cache_fields = date.save
lmtp_rcpt_check_quota = yes
# a full mailbox answers 4xx: the sender keeps the mail and retries
quota_full_tempfail = yes
plugin {{
  quota = maildir:User quota
  # every change of a mailbox's use is copied to Odoo's database
  quota_clone_dict = proxy::usage
}}
dict {{
  usage = pgsql:{run}/dovecot-dict-sql.conf.ext
}}
service dict {{
  unix_listener dict {{
    mode = 0600
    user = {s.vmail_user}
  }}
}}
protocol imap {{
  mail_plugins = $mail_plugins imap_quota
}}
service imap-login {{
  inet_listener imap {{
    port = {s.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {s.lmtp_port}
  }}
}}
service auth {{
  unix_listener {Path(s.run_dir) / "postfix" / "queue" / "private" / "auth"} {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
passdb {{
  driver = sql
  args = {run}/dovecot-sql.conf.ext
}}
userdb {{
  driver = sql
  args = {run}/dovecot-sql.conf.ext
}}
"""
    return {
        "dovecot.conf": conf,
        "dovecot-sql.conf.ext": sql,
        "dovecot-dict-sql.conf.ext": _usage_dict(s),
    }


def _usage_dict(settings):
    """Dovecot's SQL dict for quota_clone: one row per mailbox, its bytes
    and messages set (not added) on every change. The role's sessions are
    read-only by default; this connection alone may write."""
    maps = "".join(
        "map {\n"
        f"  pattern = priv/quota/{key}\n"
        f"  table = {USAGE_TABLE}\n"
        "  username_field = email\n"
        f"  value_field = {column}\n"
        "  value_type = uint\n"
        "}\n"
        for key, column in (("storage", "bytes"), ("messages", "messages"))
    )
    return (
        f"connect = {mail_dsn(settings)} "
        "options=-cdefault_transaction_read_only=off\n" + maps
    )


def retention_files(settings):
    """``{file name: content}``: the daily retention job, as a systemd
    service and timer, and as a cron line (use one of them)."""
    s = settings
    out = Path(s.run_dir)
    command = (
        f"{s.python} {Path(__file__).with_name('retention.py')} "
        f"--dsn-file {out / 'retention' / 'retention.dsn'} "
        f"--dovecot-conf {out / 'dovecot' / 'dovecot.conf'}"
    )
    hour, minute = s.retention_time.split(":")
    return {
        "retention.dsn": mail_dsn(s) + "\n",
        "emboux-mail-retention.service": (
            "[Unit]\n"
            "Description=Delete mail older than each domain's retention\n"
            "After=dovecot.service postgresql.service\n\n"
            "[Service]\n"
            "Type=oneshot\n"
            f"ExecStart={command}\n"
        ),
        "emboux-mail-retention.timer": (
            "[Unit]\n"
            "Description=Daily mail retention\n\n"
            "[Timer]\n"
            f"OnCalendar=*-*-* {hour}:{minute}:00\n"
            "Persistent=true\n\n"
            "[Install]\n"
            "WantedBy=timers.target\n"
        ),
        "emboux-mail-retention.cron": (
            f"{int(minute)} {int(hour)} * * * root {command}\n"
        ),
    }


def write(settings, out):
    """Write both configurations below ``out``; return their folders."""
    folders = {}
    for name, files in (
        ("postfix", postfix_files(settings)),
        ("dovecot", dovecot_files(settings)),
        ("opendkim", opendkim_files(settings)),
        ("retention", retention_files(settings)),
    ):
        folder = Path(out) / name
        folder.mkdir(parents=True, exist_ok=True)
        for file_name, content in files.items():
            path = folder / file_name
            path.write_text(content)
            # map files and the SQL files hold the role's password
            secret = ("pgsql-", "dovecot-sql", "dovecot-dict", "opendkim", "retention.")
            os.chmod(path, 0o640 if file_name.startswith(secret) else 0o644)
        folders[name] = folder
    return folders


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dbname", required=True)
    parser.add_argument("--out", required=True)
    for field in dataclasses.fields(MailServerSettings):
        if field.name in ("dbname", "postfix_extra"):
            continue
        parser.add_argument(
            "--" + field.name.replace("_", "-"),
            type=type(field.default),
            default=field.default,
        )
    args = vars(parser.parse_args(argv))
    out = args.pop("out")
    settings = MailServerSettings(**args)
    if not settings.password:
        parser.error("--password is required: the role logs in with it")
    settings.run_dir = out
    write(settings, out)
    sys.stdout.write(role_sql(settings) + "\n")


if __name__ == "__main__":
    main()
