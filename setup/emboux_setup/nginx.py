"""Debian's nginx in front of Odoo nodes on loopback, with the repository's
sample site (``setup/nginx/emboux-mail.conf``) included unchanged: only the
main ``nginx.conf`` and the three small files the sample includes are
written, in a directory of the caller's."""

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .paths import REPO
from .processes import free_port, kill_group, wait_port

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
    """nginx in front of the HTTP ``nodes`` (ports) and their gevent ports
    (``websocket_nodes``), listening on a free port of its own."""

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
