"""Delete the mail each domain keeps no longer: the daily retention job.

It reads the view ``emboux_mailserver.retention`` (every mailbox of a domain
with a retention, and its days) through the mail servers' read-only role,
and for each domain asks Dovecot to expunge, from every folder of every
mailbox, the messages saved before that many days. Then it logs, per
domain, how many messages went. A domain that fails is logged and the others
go on; the exit status is 1 when any failed.

It imports the standard library and psycopg2 only, so it runs on a mail
host without Odoo, as root (doveadm reads every mailbox)::

    python3 retention.py --dsn-file /etc/emboux/retention.dsn \\
        --dovecot-conf /etc/dovecot/dovecot.conf

``mailserver.py`` writes a systemd service and timer and a cron line that
run it daily.
"""

import argparse
import logging
import subprocess
import sys
import tempfile

import psycopg2

_logger = logging.getLogger("emboux.retention")

QUERY = """
    SELECT domain, retention_days, "user"
      FROM emboux_mailserver.retention
     ORDER BY domain, "user"
"""


def domains(dsn):
    """``[(domain, days, [users])]`` from the mail server view."""
    connection = psycopg2.connect(dsn)
    try:
        with connection.cursor() as cr:
            cr.execute(QUERY)
            rows = cr.fetchall()
    finally:
        connection.close()
    users = {}
    for domain, days, user in rows:
        users.setdefault((domain, days), []).append(user)
    return [(domain, days, found) for (domain, days), found in users.items()]


class Doveadm:
    """``doveadm`` on a list of users, with the instance's configuration."""

    def __init__(self, binary="doveadm", conf=None):
        self.base = [binary] + (["-c", conf] if conf else [])

    def run(self, command, users, query):
        with tempfile.NamedTemporaryFile("w", suffix=".users") as listing:
            listing.write("".join(f"{user}\n" for user in users))
            listing.flush()
            return subprocess.run(
                [*self.base, command, "-F", listing.name, *query],
                capture_output=True,
                text=True,
                check=False,
            )


def expire(doveadm, domain, days, users):
    """Expunge ``domain``'s messages saved more than ``days`` days ago;
    return how many there were."""
    query = ["mailbox", "*", "savedbefore", f"{days}d"]
    found = doveadm.run("search", users, query)
    if found.returncode:
        raise RuntimeError(found.stderr.strip() or f"exit {found.returncode}")
    count = len(found.stdout.splitlines())
    if count:
        done = doveadm.run("expunge", users, query)
        if done.returncode:
            raise RuntimeError(done.stderr.strip() or f"exit {done.returncode}")
    return count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dsn", help="libpq connection string")
    source.add_argument("--dsn-file", help="a file holding the connection string")
    parser.add_argument("--dovecot-conf", help="dovecot.conf of the instance")
    parser.add_argument("--doveadm", default="doveadm")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    dsn = args.dsn
    if args.dsn_file:
        with open(args.dsn_file, encoding="utf-8") as handle:
            dsn = handle.read().strip()
    doveadm = Doveadm(args.doveadm, args.dovecot_conf)
    failed = 0
    for domain, days, users in domains(dsn):
        try:
            count = expire(doveadm, domain, days, users)
        except (OSError, RuntimeError) as error:
            failed += 1
            _logger.error("%s: retention failed: %s", domain, error)
            continue
        _logger.info(
            "%s: deleted %d messages older than %d days from %d mailboxes",
            domain,
            count,
            days,
            len(users),
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
