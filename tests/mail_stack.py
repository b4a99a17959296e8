"""Real Postfix, Dovecot and OpenDKIM instances of the test run, and the
policy service, on loopback ports, reading an Odoo database through the
roles and with the configuration ``emboux_mail_api/services/mailserver.py``
generates."""

import datetime
import grp
import os
import pwd
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import psycopg2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "emboux_mail_api" / "services"))
sys.path.insert(0, str(REPO / "setup"))

import mailserver  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from emboux_setup.processes import free_port, wait_port  # noqa: E402

POLICYD = REPO / "emboux_mail_api" / "services" / "policyd.py"
VMAIL_USER = "emboux-vmail"
POSTFIX_DEFAULT_MAIN = Path("/etc/postfix/main.cf")


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


def _test_certificate(folder, hostname):
    """A self-signed certificate for the submission service's STARTTLS."""
    folder.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    os.chmod(key_path, 0o600)
    return cert_path, key_path


def _wait_milter(port, timeout=30):
    """Wait until a milter answers the option negotiation on ``port``: a
    mere listener there could be another service, and Postfix would then
    hold every client for its milter timeout and answer them "Try again
    later"."""
    deadline = time.monotonic() + timeout
    answer = b""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                # SMFIC_OPTNEG: protocol version 6, all actions and steps
                sock.sendall(struct.pack(">IcIII", 13, b"O", 6, 0x1FF, 0x1FFFFF))
                answer = sock.recv(5)
            if answer[4:5] == b"O":
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no milter answers on port {port}; it answered {answer!r}")


def _wait_port(port, process_name, log, timeout=30):
    if not wait_port(port, time.monotonic() + timeout):
        raise RuntimeError(f"{process_name} did not listen on {port}:\n{log()}")


class MailStack:
    """Postfix (SMTP on ``smtp_port``, submission on ``submission_port``),
    Dovecot (IMAP on ``imap_port``, LMTP on ``lmtp_port``), OpenDKIM and the
    policy service for the Odoo database ``dbname``; outgoing mail goes to
    the relay host on ``relay_port`` (none: straight to the MX)."""

    def __init__(self, cluster, dbname, odoo_role, relay_port=None):
        self.dir = REPO / "var" / "mailserver"
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        uid, gid = _vmail_ids()
        self.password = secrets.token_urlsafe(18)
        cert, key = _test_certificate(self.dir / "tls", "mx.emboux.test")
        smtp, submission, lmtp, imap, self.policy_port, dkim = (
            free_port() for _ in range(6)
        )
        self.settings = mailserver.MailServerSettings(
            dbname=dbname,
            role="emboux_mailserver_test",
            password=self.password,
            db_host="127.0.0.1",
            db_port=cluster.port,
            odoo_role=odoo_role,
            hostname="mx.emboux.test",
            smtp_address=f"127.0.0.1:{smtp}",
            lmtp_port=lmtp,
            imap_port=imap,
            listen="127.0.0.1",
            run_dir=str(self.dir),
            mail_root=str(self.dir / "vmail"),
            vmail_user=VMAIL_USER,
            vmail_uid=uid,
            vmail_gid=gid,
            submission_address=f"127.0.0.1:{submission}",
            tls_cert=str(cert),
            tls_key=str(key),
            policy_service=f"inet:127.0.0.1:{self.policy_port}",
            policy_role="emboux_policy_test",
            policy_password=secrets.token_urlsafe(18),
            dkim_port=dkim,
            relayhost=f"[127.0.0.1]:{relay_port}" if relay_port else "",
            python=sys.executable,
        )
        self.smtp_port = int(self.settings.smtp_address.rsplit(":", 1)[1])
        self.submission_port = int(self.settings.submission_address.rsplit(":", 1)[1])
        self.lmtp_port = self.settings.lmtp_port
        self.imap_port = self.settings.imap_port
        cluster.psql(mailserver.role_sql(self.settings), dbname=dbname)
        folders = mailserver.write(self.settings, self.dir)
        self.postfix_dir = folders["postfix"]
        self.dovecot_conf = folders["dovecot"] / "dovecot.conf"
        self.opendkim_conf = folders["opendkim"] / "opendkim.conf"
        (self.dir / "vmail").mkdir()
        os.chown(self.dir / "vmail", uid, gid)
        for name in ("dovecot-sql.conf.ext", "dovecot-dict-sql.conf.ext"):
            os.chown(folders["dovecot"] / name, 0, grp.getgrnam("dovecot").gr_gid)
        os.chown(self.opendkim_conf, 0, grp.getgrnam("opendkim").gr_gid)
        self.dsn_file = self.dir / "policyd.dsn"
        self.dsn_file.write_text(mailserver.policy_dsn(self.settings))
        os.chmod(self.dsn_file, 0o600)
        self.policy = None
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
        subprocess.run(["opendkim", "-x", str(self.opendkim_conf)], check=True, **quiet)
        self.start_policy()
        _wait_port(self.smtp_port, "postfix", self.maillog)
        _wait_port(self.submission_port, "postfix submission", self.maillog)
        _wait_port(self.imap_port, "dovecot", self.dovecot_log)
        _wait_port(self.lmtp_port, "dovecot lmtp", self.dovecot_log)
        _wait_milter(self.settings.dkim_port)

    def start_policy(self):
        """Start the policy service; it follows Postfix's log for the
        delivery results."""
        self.policy_log = (self.dir / "policyd.log").open("a")
        self.policy = subprocess.Popen(
            [
                sys.executable,
                str(POLICYD),
                "--dsn-file",
                str(self.dsn_file),
                "--listen",
                f"127.0.0.1:{self.policy_port}",
                "--maillog",
                str(self.postfix_dir / "maillog"),
                "--state",
                str(self.dir / "policyd.state"),
            ],
            stdout=self.policy_log,
            stderr=subprocess.STDOUT,
        )
        _wait_port(self.policy_port, "policyd", self.policyd_log)

    def mail_role_connection(self):
        """A connection to the database as the mail servers' role, in
        autocommit."""
        connection = psycopg2.connect(
            host=self.settings.db_host,
            port=self.settings.db_port,
            dbname=self.settings.dbname,
            user=self.settings.role,
            password=self.password,
        )
        connection.autocommit = True
        return connection

    def stop_policy(self):
        """Stop the policy service as its init system would (SIGTERM)."""
        if self.policy and self.policy.poll() is None:
            self.policy.terminate()
            self.policy.wait(timeout=30)
        self.policy = None

    def policyd_log(self):
        path = self.dir / "policyd.log"
        return path.read_text(errors="replace") if path.exists() else ""

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

    def _pid_files(self):
        return (
            self.postfix_dir / "queue" / "pid" / "master.pid",
            self.dir / "dovecot" / "run" / "master.pid",
            self.dir / "opendkim" / "opendkim.pid",
        )

    @staticmethod
    def _pid(path):
        """The live process a pid file names, or None."""
        try:
            pid = int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if Path(f"/proc/{pid}").exists() else None

    def _pids(self):
        """The master processes of the instances, from their pid files."""
        return [pid for pid in map(self._pid, self._pid_files()) if pid]

    def stop(self):
        self.stop_policy()
        opendkim = self._pid(self._pid_files()[2])
        if opendkim:  # it stops on SIGTERM
            os.kill(opendkim, 15)
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
