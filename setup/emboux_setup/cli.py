"""``run`` and ``test``: the two commands README.rst gives a new user; and
``readme`` and ``screenshots``, which remake the addons' READMEs."""

import os
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request

from . import debian, testing
from .odoo_locator import find_odoo
from .odoo_server import Odoo
from .paths import REPO, SetupError
from .postgres import Cluster
from .venv import ensure_venv

DEMO_DB = "emboux_demo"
# the demo portal user of emboux_mail/demo/emboux_mail_portal_demo.xml
PORTAL_DEMO_LOGIN = "portal.northwind@example.com"
PORTAL_DEMO_PASSWORD = "portal"
DEFAULT_PORT = 8069
# preloaded by the retention test to move a job's clock on; the ``faketime``
# wrapper is not used, as it stops when /dev/shm holds a semaphore named by
# its pid, which processes that clear their environment (doveadm) leave
LIBFAKETIME = (
    f"/usr/lib/{sysconfig.get_config_var('MULTIARCH')}/faketime/libfaketime.so.1"
)
# what the tests drive: the browser of the tours, a DNS server, a mail server
TEST_PACKAGES = {
    "chromium": "chromium",
    "knotd": "knot",
    "kdig": "knot-dnsutils",
    "postfix": "postfix",
    "/usr/lib/postfix/postfix-pgsql.so": "postfix-pgsql",
    "dovecot": "dovecot-imapd",
    "/usr/lib/dovecot/lmtp": "dovecot-lmtpd",
    "/usr/lib/dovecot/modules/auth/libdriver_pgsql.so": "dovecot-pgsql",
    "swaks": "swaks",
    "opendkim": "opendkim",
    "/usr/lib/opendbx/libpgsqlbackend.so": "libopendbx1-pgsql",
    LIBFAKETIME: "libfaketime",
    "nginx": "nginx",
}


# what Odoo itself needs to print invoices as PDF
RUN_PACKAGES = {"wkhtmltopdf": "wkhtmltopdf"}


def bootstrap(for_tests=False):
    """Find Odoo, fill the venv, start the cluster. Idempotent."""
    odoo_src = find_odoo()
    debian.ensure_packages({**RUN_PACKAGES, **(TEST_PACKAGES if for_tests else {})})
    python = ensure_venv(odoo_src)
    cluster = Cluster().start()
    return Odoo(odoo_src, python, cluster)


def _http_port(args):
    """The port odoo-bin will listen on, and whether ``args`` chose it."""
    for index, arg in enumerate(args):
        if arg in ("--http-port", "-p") and index + 1 < len(args):
            return int(args[index + 1]), True
        if arg.startswith("--http-port="):
            return int(arg.split("=", 1)[1]), True
    return DEFAULT_PORT, False


def wait_http(url, process, timeout=120):
    """Wait until ``url`` answers; False if ``process`` died first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return True
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.5)
    return False


def cmd_run(args):
    """Serve the demo database until Ctrl-C."""
    odoo = bootstrap()
    db = os.environ.get("EMBOUX_DB", DEMO_DB)
    port, explicit = _http_port(args)
    if not explicit:
        args = ["--http-port", str(port), *args]
    try:
        odoo.ensure_database(db, demo=True)
        process = subprocess.Popen(
            odoo.cmd("-d", db, f"--db-filter=^{db}$", *args),
            start_new_session=True,
        )

        def forward(signum, _frame):
            process.send_signal(signal.SIGINT if signum == signal.SIGINT else signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        url = f"http://127.0.0.1:{port}"
        if wait_http(f"{url}/web/login", process):
            print(banner(url, db, odoo.demo_api_key(db)), flush=True)
        return process.wait()
    finally:
        odoo.cluster.stop()


def banner(url, db, demo_key=None):
    lines = [
        "",
        f"EmBoux Mail is running at {url}/odoo (database {db})",
        "  Operator login: admin / password: admin",
    ]
    if demo_key:
        lines.append(f"  Demo customer API token ({demo_key[0]}): {demo_key[1]}")
        lines.append(
            f"  Customer portal login ({demo_key[0]}): {PORTAL_DEMO_LOGIN} "
            f"/ password: {PORTAL_DEMO_PASSWORD}  ({url}/my/email)"
        )
    if os.environ.get("EMBOUX_API_KEY"):
        lines.append("  REST API master token: the value of EMBOUX_API_KEY")
    lines.append("  Press Ctrl-C to stop.")
    return "\n".join(lines)


def cmd_test(args):
    """Lint, the addons' Odoo tests and the top-level tests; one summary."""
    odoo = bootstrap(for_tests=True)
    try:
        return testing.run_all(odoo, args)
    finally:
        odoo.cluster.stop()


def in_venv(module):
    """A command that becomes ``emboux_setup.<module>`` run by the venv's
    python, for what imports packages only the venv has (docutils, Pillow).
    The process is replaced, so that Ctrl-C reaches the module's clean-up."""

    def command(args):
        odoo_src = find_odoo()
        python = str(ensure_venv(odoo_src))
        # the venv cannot import odoo: tell the module where this found it
        env = dict(os.environ, PYTHONPATH=str(REPO / "setup"), ODOO_SRC=str(odoo_src))
        os.execve(python, [python, "-m", f"emboux_setup.{module}", *args], env)

    return command


COMMANDS = {
    "run": cmd_run,
    "test": cmd_test,
    # README.rst and index.html of each addon, from its readme/*.md
    "readme": in_venv("readme"),
    # the screenshots those show, taken from a demo database
    "screenshots": in_venv("screenshots"),
}


def main(argv):
    if not argv or argv[0] not in COMMANDS:
        print(
            f"usage: emboux_setup {{{'|'.join(COMMANDS)}}} [args...]", file=sys.stderr
        )
        return 2
    try:
        return COMMANDS[argv[0]](argv[1:])
    except SetupError as error:
        print(f"emboux: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
