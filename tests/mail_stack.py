"""Real Postfix and Dovecot instances of the test run, on loopback ports,
reading an Odoo database through the read-only role, with the configuration
``emboux_mail_api/services/mailserver.py`` generates."""

import grp
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "emboux_mail_api" / "services"))

import mailserver  # noqa: E402

VMAIL_USER = "emboux-vmail"
POSTFIX_DEFAULT_MAIN = Path("/etc/postfix/main.cf")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _vmail_ids():
    try:
        entry = pwd.getpwnam(VMAIL_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
            + [VMAIL_USER],
            check=True,
        )
        entry = pwd.getpwnam(VMAIL_USER)
    return entry.pw_uid, entry.pw_gid


def _allow_postfix_config(config_dir):
    """``postfix -c DIR`` only accepts a directory the default main.cf lists."""
    text = POSTFIX_DEFAULT_MAIN.read_text() if POSTFIX_DEFAULT_MAIN.exists() else ""
    if str(config_dir) in text:
        return
    lines = [
        line for line in text.splitlines() if not line.startswith("alternate_config")
    ]
    known = [
        line.split("=", 1)[1].strip()
        for line in text.splitlines()
        if line.startswith("alternate_config_directories")
    ]
    dirs = " ".join([*known, str(config_dir)])
    lines.append(f"alternate_config_directories = {dirs}")
    if not any(line.startswith("compatibility_level") for line in lines):
        lines.append("compatibility_level = 3.6")
    POSTFIX_DEFAULT_MAIN.write_text("\n".join(lines) + "\n")


def _wait_port(port, process_name, log, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{process_name} did not listen on {port}:\n{log()}")


class MailStack:
    """Postfix (SMTP on ``smtp_port``) and Dovecot (IMAP on ``imap_port``,
    LMTP on ``lmtp_port``) for the Odoo database ``dbname``."""

    def __init__(self, cluster, dbname, odoo_role):
        self.dir = REPO / "var" / "mailserver"
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        uid, gid = _vmail_ids()
        self.password = secrets.token_urlsafe(18)
        self.settings = mailserver.MailServerSettings(
            dbname=dbname,
            role="emboux_mailserver_test",
            password=self.password,
            db_host="127.0.0.1",
            db_port=cluster.port,
            odoo_role=odoo_role,
            hostname="mx.emboux.test",
            smtp_address=f"127.0.0.1:{free_port()}",
            lmtp_port=free_port(),
            imap_port=free_port(),
            listen="127.0.0.1",
            run_dir=str(self.dir),
            mail_root=str(self.dir / "vmail"),
            vmail_uid=uid,
            vmail_gid=gid,
        )
        self.smtp_port = int(self.settings.smtp_address.rsplit(":", 1)[1])
        self.lmtp_port = self.settings.lmtp_port
        self.imap_port = self.settings.imap_port
        cluster.psql(mailserver.role_sql(self.settings), dbname=dbname)
        folders = mailserver.write(self.settings, self.dir)
        self.postfix_dir = folders["postfix"]
        self.dovecot_conf = folders["dovecot"] / "dovecot.conf"
        (self.dir / "vmail").mkdir()
        os.chown(self.dir / "vmail", uid, gid)
        for name in ("dovecot-sql.conf.ext",):
            os.chown(folders["dovecot"] / name, 0, grp.getgrnam("dovecot").gr_gid)
        self._start()

    def _start(self):
        _allow_postfix_config(self.postfix_dir)
        # postfix chdirs into its queue first; its data directory is its own
        (self.postfix_dir / "queue").mkdir(exist_ok=True)
        (self.postfix_dir / "data").mkdir(exist_ok=True)
        postfix_ids = pwd.getpwnam("postfix")
        os.chown(self.postfix_dir / "data", postfix_ids.pw_uid, postfix_ids.pw_gid)
        postfix = ["postfix", "-c", str(self.postfix_dir)]
        subprocess.run(
            [*postfix, "post-install", "create-missing"],
            check=True,
            capture_output=True,
        )
        # both daemonise: their children must not hold a pipe of ours open
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        subprocess.run([*postfix, "start"], check=True, **quiet)
        subprocess.run(["dovecot", "-c", str(self.dovecot_conf)], check=True, **quiet)
        _wait_port(self.smtp_port, "postfix", self.maillog)
        _wait_port(self.imap_port, "dovecot", self.dovecot_log)
        _wait_port(self.lmtp_port, "dovecot lmtp", self.dovecot_log)

    def maillog(self):
        path = self.postfix_dir / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def dovecot_log(self):
        path = Path(self.settings.run_dir) / "dovecot" / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def queue_empty(self):
        result = subprocess.run(
            ["postqueue", "-c", str(self.postfix_dir), "-p"],
            capture_output=True,
            text=True,
        )
        return "Mail queue is empty" in result.stdout

    def drop_deferred(self):
        """Delete the deferred mail (a test's over-quota message)."""
        subprocess.run(
            ["postsuper", "-c", str(self.postfix_dir), "-d", "ALL", "deferred"],
            capture_output=True,
            check=True,
        )

    def flush(self):
        subprocess.run(
            ["postqueue", "-c", str(self.postfix_dir), "-f"], capture_output=True
        )

    def _pids(self):
        """The master processes of both instances, from their pid files."""
        pids = []
        for path in (
            self.postfix_dir / "queue" / "pid" / "master.pid",
            self.dir / "dovecot" / "run" / "master.pid",
        ):
            try:
                pids.append(int(path.read_text().split()[0]))
            except (OSError, ValueError, IndexError):
                continue
        return [pid for pid in pids if Path(f"/proc/{pid}").exists()]

    def stop(self):
        subprocess.run(
            ["postfix", "-c", str(self.postfix_dir), "stop"], capture_output=True
        )
        subprocess.run(
            ["doveadm", "-c", str(self.dovecot_conf), "stop"], capture_output=True
        )
        deadline = time.monotonic() + 20
        while self._pids() and time.monotonic() < deadline:
            time.sleep(0.3)
        for pid in self._pids():
            os.kill(pid, 9)
