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
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from conftest import REPO, RunningServer
from emboux_setup.cli import free_port
from emboux_setup.paths import LOG_DIR

SAMPLE = REPO / "setup" / "nginx" / "emboux-mail.conf"
# what the tests read in the access log: when the request ended, how long it
# took, its answer, and every node nginx tried for it, the last one answered
LOG_FORMAT = (
    '$msec $request_time $status $request_method "$request_uri" '
    '"$upstream_addr" "$upstream_status"'
)
ACCESS_RE = re.compile(r'^(\S+) (\S+) (\d+) (\S+) "([^"]*)" "([^"]*)" "([^"]*)"$')
# a node's passive health check, as the sample's comment documents it
HEALTH = "max_fails=3 fail_timeout=10s"
HTTP_ARGS = ["--workers", "2", "--max-cron-threads", "0", "--proxy-mode"]
CRON_ARGS = ["--workers", "0", "--max-cron-threads", "2", "--proxy-mode"]
# how a gevent process that cannot start says so in its node's log (gevent
# loads its plugins through pkg_resources: see setup/constraints.txt)
GEVENT_BROKEN_RE = re.compile(r"DistributionNotFound: .*")


def wait_port(port, deadline, host="127.0.0.1", alive=lambda: True):
    """Wait until ``port`` accepts a connection, before ``deadline`` (a
    ``time.monotonic()``); False if ``alive()`` says its process died."""
    while time.monotonic() < deadline:
        if not alive():
            return False
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


# -- processes -----------------------------------------------------------------
def _proc_stat(pid):
    """(ppid, pgrp, state) of ``pid``, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[2]), fields[0]


def _pids():
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def group_members(pgid):
    """The live (not zombie) processes of process group ``pgid``."""
    members = []
    for pid in _pids():
        stat = _proc_stat(pid)
        if stat and stat[1] == pgid and stat[2] not in ("Z", "X"):
            members.append(pid)
    return members


def odoo_group(server):
    """The process group of the odoo-bin that ``./setup/run`` started: it
    starts it in a session of its own, so the group is the master's pid, and
    holds its workers and its gevent process too."""
    for pid in _pids():
        stat = _proc_stat(pid)
        if stat and stat[0] == server.process.pid:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"odoo-bin" in cmdline:
                return stat[1]
    raise AssertionError(f"no odoo-bin below ./setup/run (pid {server.process.pid})")


def kill_group(pgid, timeout=30):
    """SIGKILL every process of ``pgid`` and wait until none is left."""
    deadline = time.monotonic() + timeout
    while group_members(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"process group {pgid} survived SIGKILL")
        time.sleep(0.05)


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


# -- nginx -----------------------------------------------------------------------
@dataclass
class Access:
    """One line of the access log."""

    end: float
    duration: float
    status: int
    method: str
    uri: str
    upstreams: list  # "127.0.0.1:port" tried, in order; the last answered

    @property
    def start(self):
        return self.end - self.duration

    @property
    def upstream(self):
        return self.upstreams[-1] if self.upstreams else None


class Nginx:
    """Debian's nginx with the sample site included unchanged; the test
    writes only the main nginx.conf and the three small files the sample
    includes, all in ``directory``."""

    def __init__(self, directory, nodes, websocket_nodes, timeout=30):
        self.directory = Path(directory)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        binary = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
        if not binary:
            raise AssertionError("nginx is missing: apt-get install nginx")
        self.access_path = self.directory / "access.log"
        self.error_path = self.directory / "error.log"
        self._write_config(nodes, websocket_nodes)
        command = [binary, "-p", str(self.directory), "-c", str(self.conf)]
        command += ["-e", str(self.error_path)]
        checked = subprocess.run(
            [*command, "-t"], capture_output=True, text=True, check=False
        )
        if checked.returncode:
            refused = checked.stderr
            raise AssertionError(f"nginx -t refused the configuration:\n{refused}")
        self._stderr = (self.directory / "stderr.log").open("w")
        self.process = subprocess.Popen(
            [*command, "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        alive = lambda: self.process.poll() is None  # noqa: E731
        if not wait_port(self.port, deadline, alive=alive):
            self.stop()
            raise AssertionError(f"nginx did not start:\n{self.errors()}")

    def _write_config(self, nodes, websocket_nodes):
        d = self.directory
        (d / "temp").mkdir(parents=True, exist_ok=True)
        (d / "emboux-mail-listen.conf").write_text(
            f"listen 127.0.0.1:{self.port};\nserver_name localhost;\n"
        )
        for name, ports in [
            ("emboux-mail-nodes.conf", nodes),
            ("emboux-mail-websocket-nodes.conf", websocket_nodes),
        ]:
            lines = [f"server 127.0.0.1:{port} {HEALTH};\n" for port in ports]
            (d / name).write_text("".join(lines))
        # as root, nginx's workers would run as nobody, who may not enter
        # pytest's private temporary directories
        user = "user root root;\n" if os.geteuid() == 0 else ""
        temp = "".join(
            f"{kind}_temp_path {d / 'temp' / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        self.conf = d / "nginx.conf"
        self.conf.write_text(
            f"{user}worker_processes 1;\npid {d / 'nginx.pid'};\n"
            f"error_log {self.error_path} warn;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            f"log_format emboux_test '{LOG_FORMAT}';\n"
            f"access_log {self.access_path} emboux_test;\n"
            f"{temp}"
            f"include {SAMPLE};\n"
            "}\n"
        )

    def errors(self):
        return "".join(
            path.read_text()
            for path in (self.error_path, self.directory / "stderr.log")
            if path.exists()
        )

    def access(self):
        """The access log so far, parsed. nginx writes a line when the
        request has ended, unbuffered (no ``buffer=`` parameter)."""
        if not self.access_path.exists():
            return []
        entries = []
        for line in self.access_path.read_text().splitlines():
            found = ACCESS_RE.match(line)
            if not found:
                continue
            end, duration, status, method, uri, upstreams, _ = found.groups()
            entries.append(
                Access(
                    float(end),
                    float(duration),
                    int(status),
                    method,
                    uri,
                    [] if upstreams == "-" else re.split(r"\s*[,:]\s+", upstreams),
                )
            )
        return entries

    def stop(self):
        """A fast stop (SIGTERM), then SIGKILL to the group if it hangs."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        kill_group(self.process.pid)
        self.process.wait()
        self._stderr.close()


# -- the whole topology ----------------------------------------------------------
class Topology:
    """Two HTTP nodes (``http``), the cron node and nginx, on database
    ``emboux_e2e_<name>``; ``master_token`` is every node's EMBOUX_API_KEY."""

    def __init__(self, run_server, name, directory):
        self.master_token = "emb_master_" + secrets.token_urlsafe(24)
        env = {"EMBOUX_API_KEY": self.master_token}
        self.http, self.gevent_ports, self.groups = [], [], {}
        self.cron = self.nginx = None
        try:
            # the factory creates the database; the other nodes must not
            # (it drops the database first): they are started directly
            for index in (1, 2):
                gevent = free_port()
                args = [*HTTP_ARGS, "--gevent-port", str(gevent)]
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
