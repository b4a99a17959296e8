"""Fixtures that start real processes: ``./setup/run`` servers on free ports.

The repository's PostgreSQL cluster is already running (``./setup/test``
started it); each server gets a database of its own, dropped afterwards.
"""

import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import dns_zones
import pytest
from api_client import Api
from dns_server import KnotServer
from mail_stack import MailStack
from server_process import ServerProcess

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "setup"))

from emboux_setup.postgres import Cluster  # noqa: E402
from emboux_setup.processes import free_port  # noqa: E402

BANNER_RE = re.compile(r"EmBoux Mail is running at (http://\S+)/odoo")


class RunningServer(ServerProcess):
    """One ``./setup/run`` process and what its banner printed."""

    def __init__(self, db, env=None, startup_timeout=600, args=()):
        self.db = db
        self.port = free_port()
        self.log_path = REPO / "var" / "log" / f"{db}-run.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [str(REPO / "setup" / "run"), "--http-port", str(self.port), *args],
            cwd=REPO,
            env={**os.environ, "EMBOUX_DB": db, **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.url = self._wait_for_banner(startup_timeout)

    def _wait_for_banner(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = BANNER_RE.search(self.output())
            if found:
                return found.group(1)
            if self.process.poll() is not None:
                break
            time.sleep(0.5)
        self.stop()
        raise AssertionError(f"./setup/run did not start:\n{self.output()[-3000:]}")


@pytest.fixture(scope="session")
def cluster():
    return Cluster().start()


@pytest.fixture(scope="session")
def run_server(cluster):
    """Factory: start ``./setup/run`` on a fresh database; stop and drop it.
    ``args`` go to odoo-bin (``--workers 2``: a prefork server)."""
    servers = []

    def start(name, env=None, args=()):
        db = f"emboux_e2e_{name}"
        cluster.drop_database(db)
        server = RunningServer(db, env=env, args=args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
        cluster.drop_database(server.db)


@pytest.fixture(scope="session")
def dns_server(tmp_path_factory):
    """Knot serving the DNS test zones on a loopback port."""
    server = KnotServer(
        tmp_path_factory.mktemp("knot"),
        {dns_zones.ZONE: dns_zones.ZONE_RECORDS},
        silent=("silent.example",),
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def demo_server(run_server):
    """One ``./setup/run`` server with the demo database and a REST API
    master token, shared by tests that leave its demo records alone."""
    master_token = "emb_master_" + secrets.token_urlsafe(24)
    server = run_server("demo", env={"EMBOUX_API_KEY": master_token})
    server.master_token = master_token
    return server


@pytest.fixture(scope="session")
def master(demo_server):
    """The demo server's REST API, with the master token."""
    return Api(demo_server.url, demo_server.master_token)


@pytest.fixture(scope="module")
def stack(demo_server, cluster):
    """Postfix, Dovecot, OpenDKIM and the policy service on the demo
    database, for the tests of one module."""
    mail = MailStack(cluster, demo_server.db, odoo_role="emboux")
    yield mail
    mail.stop()
