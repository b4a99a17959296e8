"""A private PostgreSQL cluster under ``var/pg`` for the demo and the tests.

PostgreSQL refuses to run as root, so when the commands are started as root
the server runs as a dedicated system user, ``emboux-pg``, created on first
use (not ``postgres``, which owns the machine's own clusters). It listens on
a unix socket in ``var/pg/run``, where Odoo connects with its own role
``emboux`` (it may create databases but is not a superuser), and on a free
loopback port (kept in ``var/pg/port``) where only roles with a password get
in: the read-only role of the mail servers.
"""

import glob
import os
import pwd
import shutil
import subprocess
import time

from . import debian
from .paths import LOG_DIR, VAR, SetupError
from .processes import free_port

PG_DIR = VAR / "pg"
DATA = PG_DIR / "data"
SOCKET_DIR = PG_DIR / "run"
PORT_FILE = PG_DIR / "port"
ODOO_ROLE = "emboux"
ADMIN_ROLE = "emboux_admin"
REPLICATION_ROLE = "emboux_replication"
SERVER_OS_USER = "emboux-pg"
MAX_SOCKET_PATH = 100  # sockaddr_un holds 107 bytes, the name adds 16


def _bindir():
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for path in candidates:
        if os.path.exists(os.path.join(path, "initdb")):
            return path
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _os_user():
    """The non-root OS user that owns and runs the cluster."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    try:
        pwd.getpwnam(SERVER_OS_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
            + [SERVER_OS_USER],
            check=True,
        )
    return SERVER_OS_USER


class Cluster:
    """Start, stop and query the repository's own PostgreSQL cluster."""

    def __init__(self):
        bindir = _bindir()
        if bindir is None:
            debian.ensure_packages({"initdb": "postgresql"})
            bindir = _bindir()
        if bindir is None:
            raise SetupError(
                "PostgreSQL's server binaries (initdb, pg_ctl) were not found: "
                "install Debian's postgresql package."
            )
        self.bindir = bindir
        self.os_user = _os_user()
        self.started_here = False

    # -- helpers ---------------------------------------------------------------
    def _as_owner(self, args, **kwargs):
        cmd = [os.path.join(self.bindir, args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", self.os_user, "--", *cmd]
        return subprocess.run(cmd, **kwargs)

    def psql(self, sql, dbname="postgres", user=ADMIN_ROLE, check=True):
        """Run one SQL statement; return its unaligned output."""
        return _psql(self.bindir, SOCKET_DIR, self.port, sql, dbname, user, check)

    @property
    def dsn_args(self):
        """The connection options odoo-bin needs."""
        return {"db_host": str(SOCKET_DIR), "db_port": self.port, "db_user": ODOO_ROLE}

    @property
    def port(self):
        """The cluster's port: its unix socket's name and its TCP port."""
        return int(PORT_FILE.read_text()) if PORT_FILE.exists() else 5432

    # -- life cycle ------------------------------------------------------------
    def _initialise(self):
        if len(str(SOCKET_DIR)) > MAX_SOCKET_PATH:
            raise SetupError(
                f"the repository path is too long for a PostgreSQL socket "
                f"({SOCKET_DIR}): clone it into a shorter path."
            )
        for path in (PG_DIR, SOCKET_DIR):
            path.mkdir(parents=True, exist_ok=True)
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        owner = pwd.getpwnam(self.os_user)
        for path in (PG_DIR, SOCKET_DIR):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        os.chmod(SOCKET_DIR, 0o700)
        if (DATA / "PG_VERSION").exists():
            if DATA.stat().st_uid != owner.pw_uid and os.geteuid() == 0:
                # a cluster made by an older set-up, or copied: hand it over
                subprocess.run(["chown", "-R", self.os_user, str(PG_DIR)], check=True)
            return
        probe = self._as_owner(["initdb", "--version"], capture_output=True)
        if probe.returncode != 0:
            raise SetupError(
                f"the OS user {self.os_user} cannot reach {PG_DIR}: give it "
                f"read and execute rights on every parent directory."
            )
        print(f"Creating the PostgreSQL cluster in {DATA} ...", flush=True)
        port = free_port()
        result = self._as_owner(
            [
                "initdb",
                "-D",
                str(DATA),
                "-U",
                ADMIN_ROLE,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise SetupError(f"initdb failed: {result.stderr.strip()}")
        with (DATA / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# Written by setup/emboux_setup/postgres.py\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{SOCKET_DIR}'\n"
                f"port = {port}\n"
                "max_connections = 200\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
            )
        PORT_FILE.write_text(str(port))

    def is_running(self):
        result = self._as_owner(
            ["pg_ctl", "-D", str(DATA), "status"], capture_output=True
        )
        return result.returncode == 0

    def start(self):
        """Start the cluster when it is not running; make sure the role exists."""
        self._initialise()
        if not self.is_running():
            log = LOG_DIR / "postgresql.log"
            if os.geteuid() == 0:
                log.touch()
                owner = pwd.getpwnam(self.os_user)
                os.chown(log, owner.pw_uid, owner.pw_gid)
            result = self._as_owner(
                ["pg_ctl", "-D", str(DATA), "-l", str(log), "-w", "-t", "60", "start"],
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise SetupError(f"PostgreSQL did not start; its log is {log}.")
            self.started_here = True
        for _attempt in range(50):
            if self.psql("SELECT 1", check=False) == "1":
                break
            time.sleep(0.2)
        exists = self.psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{ODOO_ROLE}'")
        if exists != "1":
            self.psql(f"CREATE ROLE {ODOO_ROLE} LOGIN CREATEDB")
        return self

    def stop(self):
        """Stop the cluster if this process started it."""
        if self.started_here:
            self._as_owner(
                ["pg_ctl", "-D", str(DATA), "-m", "fast", "-w", "stop"],
                capture_output=True,
            )
            self.started_here = False

    # -- databases -------------------------------------------------------------
    def database_exists(self, name):
        query = f"SELECT 1 FROM pg_database WHERE datname = '{_quote(name)}'"
        return self.psql(query) == "1"

    def drop_database(self, name):
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Standby:
    """A hot standby of the repository's cluster, streaming from it, in
    ``directory`` (``data`` and its socket in ``run``) on a port of its own:
    copied with ``pg_basebackup`` through a replication role, then started
    read-only. Odoo reads from it with ``--db_replica_host <socket dir>
    --db_replica_port <port>``; every role and database of the primary is
    there, Odoo's own role too."""

    def __init__(self, primary, directory):
        self.primary = primary
        self.directory = directory
        self.data = directory / "data"
        self.socket_dir = directory / "run"
        self.log = LOG_DIR / f"postgresql-{directory.name}.log"
        self.port = None

    def start(self):
        """Copy the primary and start streaming from it; returns self."""
        primary = self.primary
        if len(str(self.socket_dir)) > MAX_SOCKET_PATH:
            raise SetupError(f"the standby's socket path is too long: {self.directory}")
        exists = primary.psql(
            f"SELECT 1 FROM pg_roles WHERE rolname = '{REPLICATION_ROLE}'"
        )
        if exists != "1":
            primary.psql(f"CREATE ROLE {REPLICATION_ROLE} LOGIN REPLICATION")
        if self.directory.exists():
            self.remove()
        self.socket_dir.mkdir(parents=True)
        owner = pwd.getpwnam(primary.os_user)
        for path in (self.directory, self.socket_dir):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        os.chmod(self.socket_dir, 0o700)
        copied = primary._as_owner(
            ["pg_basebackup", "-h", str(SOCKET_DIR), "-p", str(primary.port)]
            + ["-U", REPLICATION_ROLE, "-D", str(self.data), "-X", "stream", "-R"]
            + ["-c", "fast"],
            capture_output=True,
            text=True,
        )
        if copied.returncode != 0:
            raise SetupError(f"pg_basebackup failed: {copied.stderr.strip()}")
        self.port = free_port()
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# The standby's own, after the primary's copied lines\n"
                "listen_addresses = ''\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                f"port = {self.port}\n"
                "hot_standby = on\n"
            )
        self.log.touch()
        os.chown(self.log, owner.pw_uid, owner.pw_gid)
        started = primary._as_owner(
            ["pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60"]
            + ["start"],
            capture_output=True,
            text=True,
        )
        if started.returncode != 0:
            raise SetupError(f"the standby did not start; its log is {self.log}.")
        if self.psql("SELECT pg_is_in_recovery()") != "t":
            raise SetupError("the standby is not in recovery: it would not follow")
        return self

    def psql(self, sql, dbname="postgres"):
        """Run one statement on the standby (as the primary's admin role)."""
        bindir = self.primary.bindir
        return _psql(bindir, self.socket_dir, self.port, sql, dbname, ADMIN_ROLE)

    def wait_replayed(self, timeout=60):
        """Wait until the standby replayed everything the primary wrote so
        far (its WAL position now)."""
        target = self.primary.psql("SELECT pg_current_wal_lsn()")
        deadline = time.monotonic() + timeout
        query = f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"
        while self.psql(query) != "t":
            if time.monotonic() > deadline:
                raise SetupError(f"the standby did not replay up to {target}")
            time.sleep(0.1)

    def remove(self):
        """Stop the standby and delete its copy."""
        if (self.data / "PG_VERSION").exists():
            self.primary._as_owner(
                ["pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
            )
        shutil.rmtree(self.directory, ignore_errors=True)


def _psql(bindir, socket_dir, port, sql, dbname, user, check=True):
    """One SQL statement through psql on a unix socket; its unaligned output."""
    cmd = [os.path.join(bindir, "psql"), "-X", "-q", "-A", "-t"]
    cmd += ["-h", str(socket_dir), "-p", str(port), "-U", user, "-d", dbname]
    cmd += ["-v", "ON_ERROR_STOP=1", "-c", sql]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise SetupError(f"PostgreSQL refused {sql!r}: {result.stderr.strip()}")
    return result.stdout.strip()


def _quote(value):
    return value.replace("'", "''")
