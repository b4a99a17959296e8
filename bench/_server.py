"""What the benchmarks share to run Odoo: find it, create fresh databases,
serve them on free loopback ports, and remove all of it again.

Why a module: every benchmark needs the same set-up and the same clean-up,
and one copy of them keeps the benchmarks measuring the same kind of server
(same configuration, crons off, logs under ``var/log``) and leaving nothing
behind, also after an error or Ctrl-C.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

SETUP = Path(__file__).resolve().parents[1] / "setup"
sys.path.insert(0, str(SETUP))

from emboux_setup.cli import bootstrap, wait_http  # noqa: E402
from emboux_setup.odoo_server import addons_digest  # noqa: E402
from emboux_setup.paths import ADDONS, LOG_DIR, REPO, VAR, SetupError  # noqa: E402
from emboux_setup.processes import free_port, kill_group  # noqa: E402

__all__ = ["LOG_DIR", "TIMEOUT", "Bench", "BenchError", "create_tenant", "run_main"]
TIMEOUT = (5, 60)  # seconds to connect, to read one answer


class BenchError(Exception):
    """The set-up of the benchmark failed; the message says where."""


def locate_odoo():
    """Set ODOO_SRC when unset: the project's locator finds Odoo through the
    machine's python3, whose ``odoo`` this venv cannot see."""
    if "ODOO_SRC" in os.environ:
        return
    probe = "from emboux_setup.odoo_locator import find_odoo; print(find_odoo())"
    result = subprocess.run(
        ["python3", "-c", probe],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SETUP)},
        check=False,
    )
    if result.returncode == 0:
        os.environ["ODOO_SRC"] = result.stdout.strip()


def describe_code():
    """Which code of the addons is measured: the commit, and a digest of
    the files when they differ from it, so that runs can be told apart."""

    def git(*args):
        command = ["git", "-C", str(REPO), *args]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        return result.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "?"
    if not git("status", "--porcelain", "--", *ADDONS):
        return f"commit {head}"
    digest = addons_digest()[:12]
    return f"commit {head} with uncommitted changes to the addons (digest {digest})"


def stop_server(process):
    """SIGTERM (Odoo's graceful stop), then SIGKILL to its process group if
    it hangs, or if a prefork server left a worker or its gevent process."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    kill_group(process.pid)  # its own session: the group is its pid
    process.wait(timeout=10)


class Bench:
    """The Odoo of one benchmark run: the project's venv and cluster
    (``bootstrap()`` of ``setup/emboux_setup``), the databases ``dbs`` and
    the servers started here. Leaving the ``with`` block stops the servers,
    drops the databases with their filestores and stops the cluster if this
    run started it, whatever ended the block."""

    def __init__(self, dbs):
        self.dbs = dbs
        self.processes = []
        self.odoo = None

    def __enter__(self):
        locate_odoo()
        self.odoo = bootstrap()
        print(f"Measuring the addons at {describe_code()}", flush=True)
        return self

    def __exit__(self, *_exc):
        try:
            self.stop_servers()
            for db in self.dbs:
                self.drop(db)
        finally:
            self.odoo.cluster.stop()

    @property
    def cluster(self):
        return self.odoo.cluster

    def stop_servers(self):
        """Stop every server started so far, the last one first."""
        while self.processes:
            stop_server(self.processes.pop())

    def drop(self, db):
        """Drop ``db`` and its filestore, as Odoo's own drop does."""
        self.cluster.drop_database(db)
        shutil.rmtree(VAR / "data" / "filestore" / db, ignore_errors=True)

    def install(self, db, log_name):
        """A fresh database ``db`` with both addons and no demo data."""
        self.drop(db)
        print(f"Creating {db} (log: {LOG_DIR / log_name}) ...", flush=True)
        args = ["-d", db, "-i", ",".join(ADDONS), "--without-demo=all"]
        self.odoo.run_logged([*args, "--stop-after-init"], log_name, f"creating {db}")

    def serve(self, db, log_path, env, args=()):
        """odoo-bin serving ``db`` on a free loopback port, its output in
        ``log_path``, ``env`` added to its environment, ``args`` to its
        command line (threaded unless they ask for workers), and crons off
        so that they cannot add noise to the timings; returns its base URL.
        Several servers may serve the same ``db``."""
        port = free_port()
        cmd = self.odoo.cmd(
            "-d",
            db,
            f"--db-filter=^{db}$",
            f"--http-port={port}",
            "--max-cron-threads=0",
            *args,
        )
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        with Path(log_path).open("w") as log:
            process = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
                start_new_session=True,
            )
        self.processes.append(process)
        base = f"http://127.0.0.1:{port}"
        if not wait_http(f"{base}/web/health", process):
            raise BenchError(f"Odoo did not answer /web/health; its log is {log_path}")
        return base


def post(session, url, token, body):
    """A set-up request that must answer 201."""
    headers = {"Authorization": f"Bearer {token}"}
    response = session.post(url, json=body, headers=headers, timeout=TIMEOUT)
    if response.status_code != 201:
        raise BenchError(f"POST {url}: {response.status_code} {response.text[:500]}")


def create_tenant(session, base, master, token, partner_ref, domains):
    """A tenant key ``token`` without quotas (``POST /api-keys/``, master)
    and its ``domains`` (``POST /domains/``, the tenant's own token)."""
    key = {
        "token": token,
        "partner_ref": partner_ref,
        "domains_allowed": 0,
        "mailboxes_per_domain": 0,
        "aliases_per_mailbox": 0,
    }
    post(session, f"{base}/api-keys/", master, key)
    for name in domains:
        post(session, f"{base}/domains/", token, {"name": name})


def run_main(main):
    """Call a benchmark's ``main``: a set-up failure is one line on stderr
    and exit status 1, Ctrl-C exit status 130, both after the clean-up."""
    try:
        main()
    except (BenchError, SetupError) as error:
        sys.exit(f"bench: {error}")
    except KeyboardInterrupt:
        sys.exit(130)
