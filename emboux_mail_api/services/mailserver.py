"""Configuration that points Postfix and Dovecot at an Odoo database.

Postfix and Dovecot read the SQL views that ``emboux_mail_api`` keeps in the
schema ``emboux_mailserver`` (see models/emboux_mail_server.py), through a
PostgreSQL role that may read those views and nothing else. This module
renders that role's SQL and both servers' configuration files; it imports
nothing but the standard library, so it runs on a mail host without Odoo:

    python3 emboux_mail_api/services/mailserver.py --dbname odoo --out /tmp/conf \\
        --db-host 10.0.0.5 --role mailserver --password '...'

prints the SQL for a database superuser and writes ``postfix/`` and
``dovecot/`` below ``--out``.
"""

import argparse
import dataclasses
import os
import sys
from pathlib import Path

SCHEMA = "emboux_mailserver"


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
    vmail_uid: int = 5000
    vmail_gid: int = 5000
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
            # views that a module upgrade re-creates get the grant again
            f'ALTER DEFAULT PRIVILEGES FOR ROLE "{s.odoo_role}" IN SCHEMA {SCHEMA} '
            f"GRANT SELECT ON TABLES TO {role};",
        ]
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
        **s.postfix_extra,
    }
    main_cf = "".join(f"{key} = {value}\n" for key, value in main.items())
    master_cf = (
        f"{s.smtp_address} inet n - n - - smtpd\n"
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


def dovecot_files(settings):
    """``{file name: content}`` of a Dovecot instance (``dovecot -c FILE``)."""
    s = settings
    run = Path(s.run_dir) / "dovecot"
    connect = (
        f"host={s.db_host} port={s.db_port} dbname={s.dbname} "
        f"user={s.role} password={s.password}"
    )
    sql = (
        "driver = pgsql\n"
        f"connect = {connect}\n"
        "default_pass_scheme = SHA512-CRYPT\n"
        # mailboxes of a suspended or unverified domain cannot log in; mail
        # accepted before a suspension is still delivered (the user query
        # ignores it)
        'password_query = SELECT "user", password FROM '
        f"{SCHEMA}.users WHERE \"user\" = '%u' AND login_allowed\n"
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
mail_plugins = $mail_plugins quota
lmtp_rcpt_check_quota = yes
# a full mailbox answers 4xx: the sender keeps the mail and retries
quota_full_tempfail = yes
plugin {{
  quota = maildir:User quota
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
passdb {{
  driver = sql
  args = {run}/dovecot-sql.conf.ext
}}
userdb {{
  driver = sql
  args = {run}/dovecot-sql.conf.ext
}}
"""
    return {"dovecot.conf": conf, "dovecot-sql.conf.ext": sql}


def write(settings, out):
    """Write both configurations below ``out``; return their folders."""
    folders = {}
    for name, files in (
        ("postfix", postfix_files(settings)),
        ("dovecot", dovecot_files(settings)),
    ):
        folder = Path(out) / name
        folder.mkdir(parents=True, exist_ok=True)
        for file_name, content in files.items():
            path = folder / file_name
            path.write_text(content)
            # map files and the SQL file hold the role's password
            os.chmod(
                path,
                0o640 if file_name.startswith(("pgsql-", "dovecot-sql")) else 0o644,
            )
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
