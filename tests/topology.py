"""The production layout of setup/nginx/emboux-mail.conf, started for real on
loopback: two prefork HTTP nodes without cron, one cron node, all on one
database, and nginx in front of the HTTP nodes with the repository's sample
configuration used as is.

Sessions and the filestore are shared because every ``./setup/run`` writes
the same ``var/odoo.conf`` (``setup/emboux_setup/odoo_server.py``), whose
``data_dir`` is the repository's ``var/data``: Odoo keeps the sessions in
``var/data/sessions`` and the attachments in ``var/data/filestore/<db>``,
as a production layout keeps them on a file system all nodes mount."""

import os
import re
import secrets
import subprocess
import time
from pathlib import Path

from conftest import RunningServer
from emboux_setup.nginx import Nginx
from emboux_setup.paths import LOG_DIR, REPO
from emboux_setup.processes import free_port, kill_group, pids, proc_stat, wait_port

HTTP_ARGS = ["--workers", "2", "--max-cron-threads", "0", "--proxy-mode"]
CRON_ARGS = ["--workers", "0", "--max-cron-threads", "2", "--proxy-mode"]
# how a gevent process that cannot start says so in its node's log (gevent
# loads its plugins through pkg_resources: see setup/constraints.txt)
GEVENT_BROKEN_RE = re.compile(r"DistributionNotFound: .*")


# -- processes -----------------------------------------------------------------
def odoo_group(server):
    """The process group of the odoo-bin that ``./setup/run`` started: it
    starts it in a session of its own, so the group is the master's pid, and
    holds its workers and its gevent process too."""
    for pid in pids():
        stat = proc_stat(pid)
        if stat and stat[0] == server.process.pid:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"odoo-bin" in cmdline:
                return stat[1]
    raise AssertionError(f"no odoo-bin below ./setup/run (pid {server.process.pid})")


class Node(RunningServer):
    """A ``./setup/run`` node on an existing database, with a log of its
    own: ``RunningServer`` names the log after the database, which every
    node shares. ``./setup/run`` finds the database up to date (the first
    node just created it, and recorded its addons' digest) and only starts
    odoo-bin."""

    def __init__(self, db, name, env, args, startup_timeout=300):
        self.db = db
        self.name = name
        self.port = free_port()
        self.log_path = LOG_DIR / f"{db}-{name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [str(REPO / "setup" / "run"), "--http-port", str(self.port), *args],
            cwd=REPO,
            env={**os.environ, "EMBOUX_DB": db, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.url = self._wait_for_banner(startup_timeout)


# -- the whole topology ----------------------------------------------------------
class Topology:
    """Two HTTP nodes (``http``), the cron node and nginx, on database
    ``emboux_e2e_<name>``; ``master_token`` is every node's EMBOUX_API_KEY.
    With a ``standby`` (``emboux_setup.postgres.Standby``), the HTTP nodes
    send Odoo's read-only requests to it; the cron node writes, it has no
    use for a replica."""

    def __init__(self, run_server, name, directory, standby=None):
        self.master_token = "emb_master_" + secrets.token_urlsafe(24)
        self.standby = standby
        env = {
            "EMBOUX_API_KEY": self.master_token,
            # connected mode: the nodes encrypt and decrypt the same tokens
            "EMBOUX_SECRET_KEY": secrets.token_urlsafe(32),
        }
        self.http, self.gevent_ports, self.groups = [], [], {}
        self.cron = self.nginx = None
        replica = []
        if standby:
            replica = ["--db_replica_host", str(standby.socket_dir)]
            replica += ["--db_replica_port", str(standby.port)]
        try:
            # the factory creates the database; the other nodes must not
            # (it drops the database first): they are started directly
            for index in (1, 2):
                gevent = free_port()
                args = [*HTTP_ARGS, "--gevent-port", str(gevent), *replica]
                if index == 1:
                    node = run_server(name, env=env, args=args)
                else:
                    node = Node(self.http[0].db, f"node{index}", env, args)
                self.http.append(node)
                self.groups[node] = odoo_group(node)
                self.gevent_ports.append(gevent)
            self.db = self.http[0].db
            self.cron = Node(self.db, "cron", env, CRON_ARGS)
            self.groups[self.cron] = odoo_group(self.cron)
            self.nginx = Nginx(
                directory, [n.port for n in self.http], self.gevent_ports
            )
        except BaseException:
            self.stop()
            raise
        self.url = self.nginx.url

    def wait_websocket(self, timeout=60):
        """None once every HTTP node's gevent process accepts connections
        (it starts after the master), or why one cannot start: the master
        respawns a gevent process that dies, and the log says why."""
        deadline = time.monotonic() + timeout
        for node, port in zip(self.http, self.gevent_ports, strict=True):
            while not wait_port(port, min(deadline, time.monotonic() + 1)):
                broken = GEVENT_BROKEN_RE.search(node.output())
                if broken:
                    return broken.group(0)
                if time.monotonic() > deadline:
                    return f"nothing listens on the gevent port {port}"
        return None

    def address(self, node):
        """How the access log names ``node`` (an HTTP node)."""
        return f"127.0.0.1:{node.port}"

    def kill(self, node):
        """SIGKILL the node's odoo-bin: master, workers and gevent process
        at once, as a crashed machine would leave them."""
        kill_group(self.groups[node])
        node.process.wait(timeout=60)  # ./setup/run returns once odoo-bin died

    def stop(self):
        """Stop everything that started, whether or not it still runs (a
        test may have killed a node): nginx, then the nodes, then any
        process left in a node's group."""
        steps = [self.nginx.stop] if self.nginx else []
        for node in [self.cron, *reversed(self.http)]:
            if node is not None:
                steps.append(node.stop)
            if node in self.groups:
                steps.append(lambda pgid=self.groups[node]: kill_group(pgid))
        failures = []
        for step in steps:
            try:
                step()
            except Exception as error:  # the other steps must run anyway
                failures.append(error)
        if failures:
            raise failures[0]
