"""Benchmark of the EmBoux REST API on one local Odoo server.

Why: to see what each API route costs above Odoo's own floor
(``/web/health``) on the same server in the same run, and how listing and
creating mailboxes slow down when the mailbox table grows from 1k to 100k
rows. It prints latencies, throughput and ratios and asserts nothing: the
absolute numbers belong to the machine.

    .venv/bin/python bench/api.py [--quick]

The run is bounded: a fixed number of requests per measurement, a timeout per
request, and the server and the ``emboux_bench`` database are removed at the
end, also after an error or Ctrl-C.
"""

import argparse
import contextlib
import itertools
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg2
import requests
from passlib.hash import sha512_crypt
from psycopg2.extras import execute_values

SETUP = Path(__file__).resolve().parents[1] / "setup"
sys.path.insert(0, str(SETUP))

from emboux_setup.cli import bootstrap, free_port, wait_http  # noqa: E402
from emboux_setup.paths import ADDONS, LOG_DIR, SetupError  # noqa: E402

DB = "emboux_bench"
TENANT = "bench_tenant"
DOMAINS = 1000
WARMUP = 20
REQUESTS = 300
CLIENTS = 8
TIMEOUT = (5, 60)  # seconds to connect, to read one answer
PASSWORD = "Bench-password-1"
SERVER_LOG = LOG_DIR / "bench-server.log"
MODES = ("seq", f"x{CLIENTS}")
FLOOR = "GET /web/health"


class BenchError(Exception):
    """The set-up of the benchmark failed; the message says where."""


# -- server and data ------------------------------------------------------------
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


def install(odoo):
    """A fresh database with both addons and no demo data."""
    odoo.cluster.drop_database(DB)
    print(f"Creating {DB} (log: {LOG_DIR / 'bench-init.log'}) ...", flush=True)
    args = ["-d", DB, "-i", ",".join(ADDONS), "--without-demo=all"]
    odoo.run_logged([*args, "--stop-after-init"], "bench-init.log", f"creating {DB}")


def start_server(odoo, master, log):
    """odoo-bin on a free loopback port, crons off so that they cannot add
    noise to the timings; returns the process and its base URL."""
    port = free_port()
    cmd = odoo.cmd(
        "-d", DB, f"--db-filter=^{DB}$", f"--http-port={port}", "--max-cron-threads=0"
    )
    env = {**os.environ, "EMBOUX_API_KEY": master}
    process = subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    if not wait_http(f"{base}/web/health", process):
        raise BenchError(f"Odoo did not answer /web/health; its log is {SERVER_LOG}")
    return process, base


def stop_server(process):
    """SIGTERM (Odoo's graceful stop), then SIGKILL if it hangs."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def post(session, url, token, body):
    """A set-up request that must answer 201."""
    headers = {"Authorization": f"Bearer {token}"}
    response = session.post(url, json=body, headers=headers, timeout=TIMEOUT)
    if response.status_code != 201:
        raise BenchError(f"POST {url}: {response.status_code} {response.text[:500]}")


def create_tenant(base, master, customer):
    """One tenant key without quotas and its domains, through the API."""
    names = [f"bench{n:04d}.example" for n in range(DOMAINS)]
    print(f"Creating the tenant key and {DOMAINS} domains over HTTP ...", flush=True)
    with requests.Session() as session:
        key = {
            "token": customer,
            "partner_ref": TENANT,
            "domains_allowed": 0,
            "mailboxes_per_domain": 0,
            "aliases_per_mailbox": 0,
        }
        post(session, f"{base}/api-keys/", master, key)
        for name in names:
            post(session, f"{base}/domains/", customer, {"name": name})
    return names


def fill_mailboxes(cluster, total):
    """Top the mailbox table up to ``total`` rows in SQL, then fix the
    domains' counters: 100k ORM creates over HTTP would take hours and
    measure nothing that POST /users/ does not already measure."""
    password_hash = "{SHA512-CRYPT}" + sha512_crypt.using(rounds=5000).hash(PASSWORD)
    dsn = cluster.dsn_args  # Odoo's own connection: the socket, role emboux
    connection = psycopg2.connect(
        host=dsn["db_host"], port=dsn["db_port"], user=dsn["db_user"], dbname=DB
    )
    with contextlib.closing(connection):
        with connection, connection.cursor() as cr:
            cr.execute("SELECT count(*) FROM emboux_mail_mailbox")
            have = cr.fetchone()[0]
            cr.execute(
                "SELECT id, name, partner_id, company_id FROM emboux_mail_domain "
                "ORDER BY id"
            )
            domains = cr.fetchall()
            rows = []
            for n in range(have, total):
                domain_id, name, partner_id, company_id = domains[n % len(domains)]
                email = f"bulk{n}@{name}"
                rows.append((email, domain_id, partner_id, company_id, password_hash))
            execute_values(
                cr,
                "INSERT INTO emboux_mail_mailbox (email, domain_id, partner_id,"
                " company_id, quota_mb, create_date, write_date, create_uid,"
                " write_uid, password_hash) VALUES %s",
                rows,
                template="(%s, %s, %s, %s, 1024, now() AT TIME ZONE 'UTC',"
                " now() AT TIME ZONE 'UTC', 1, 1, %s)",
                page_size=1000,
            )
            cr.execute(
                "UPDATE emboux_mail_domain d SET mailbox_count = (SELECT count(*)"
                " FROM emboux_mail_mailbox m WHERE m.domain_id = d.id)"
            )
        # a settled table with planner statistics, rather than autovacuum
        # waking up in the middle of the measurements
        connection.autocommit = True
        with connection.cursor() as cr:
            cr.execute("VACUUM (ANALYZE) emboux_mail_mailbox, emboux_mail_domain")
            cr.execute("SELECT count(*) FROM emboux_mail_mailbox")
            return cr.fetchone()[0]


# -- measurement ----------------------------------------------------------------
def targets(customer, domains):
    """(label, method, path, headers, body factory, expected status)."""
    auth = {"Authorization": f"Bearer {customer}"}
    serial = itertools.count()

    def new_mailbox():
        n = next(serial)
        domain = domains[n % len(domains)]
        return {
            "domain_name": domain,
            "email": f"post{n}@{domain}",
            "password": PASSWORD,
        }

    return [
        (FLOOR, "GET", "/web/health", {}, None, 200),
        ("GET /domains/", "GET", "/domains/", auth, None, 200),
        ("GET /users/?limit=100", "GET", "/users/?limit=100", auth, None, 200),
        ("POST /users/", "POST", "/users/", auth, new_mailbox, 201),
    ]


def call(session, base, target):
    """One request: (seconds, None) or (seconds, what went wrong)."""
    _label, method, path, headers, body, expected = target
    payload = body() if body else None
    start = time.perf_counter()
    try:
        response = session.request(
            method, base + path, headers=headers, json=payload, timeout=TIMEOUT
        )
    except requests.RequestException as exc:
        return time.perf_counter() - start, type(exc).__name__
    elapsed = time.perf_counter() - start
    if response.status_code != expected:
        return elapsed, f"{response.status_code} {response.text[:300]}"
    return elapsed, None


def sequential(base, target):
    """One keep-alive client, one request after the other."""
    with requests.Session() as session:
        for _ in range(WARMUP):
            call(session, base, target)
        start = time.perf_counter()
        outcomes = [call(session, base, target) for _ in range(REQUESTS)]
        return outcomes, time.perf_counter() - start


def concurrent(base, target):
    """CLIENTS threads, each with its own keep-alive session, sharing the
    same fixed number of requests."""
    local, sessions = threading.local(), []

    def one(_index):
        if not hasattr(local, "session"):
            local.session = requests.Session()
            sessions.append(local.session)
        return call(local.session, base, target)

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(one, range(WARMUP)))
        start = time.perf_counter()
        outcomes = list(pool.map(one, range(REQUESTS)))
        seconds = time.perf_counter() - start
    for session in sessions:
        session.close()
    return outcomes, seconds


def summarize(outcomes, seconds, server_log):
    """Latencies of the successful answers, their rate, and the failures."""
    ok = [elapsed * 1000 for elapsed, error in outcomes if error is None]
    cuts = statistics.quantiles(ok, n=100, method="inclusive") if len(ok) > 1 else None
    return {
        "p50": cuts[49] if cuts else None,
        "p95": cuts[94] if cuts else None,
        "rps": len(ok) / seconds,
        "ok": len(ok),
        "errors": Counter(error for _elapsed, error in outcomes if error),
        "retries": server_log.count("tries left"),
        "log_errors": [line for line in server_log.splitlines() if " ERROR " in line],
    }


def measure(base, target, mode):
    """One measurement, with the server log lines it produced."""
    offset = SERVER_LOG.stat().st_size
    run = sequential if mode == "seq" else concurrent
    outcomes, seconds = run(base, target)
    with SERVER_LOG.open(errors="replace") as log:
        log.seek(offset)
        return summarize(outcomes, seconds, log.read())


# -- report ---------------------------------------------------------------------
def fmt(value, spec=".1f"):
    return "-" if value is None else format(value, spec)


def ratio(numerator, denominator):
    return numerator / denominator if numerator and denominator else None


def report(results, sizes, labels):
    """The table, the ratios to the floor and the large-vs-small ratios."""
    print(
        f"\n{REQUESTS} requests per row after {WARMUP} warm-up; seq = one client, "
        f"x{CLIENTS} = {CLIENTS} concurrent clients.\np50/p95 in ms over the "
        "successful answers; rps = successful answers per second; retries = "
        "Odoo's\nconcurrency-failure replays logged during the row.\n"
    )
    head = f"{'size':>5} {'route':<22} {'mode':<4} {'p50':>8} {'p95':>8} {'rps':>7}"
    print(f"{head} {'ok':>4} {'err':>4} {'retries':>7}")
    for (size, label, mode), row in results.items():
        err = sum(row["errors"].values())
        print(
            f"{size:>5} {label:<22} {mode:<4} {fmt(row['p50']):>8} "
            f"{fmt(row['p95']):>8} {fmt(row['rps']):>7} {row['ok']:>4} {err:>4} "
            f"{row['retries']:>7}"
        )

    print(f"\nRatio to {FLOOR} at the same size (p50: x slower, rps: fraction)")
    print(f"{'size':>5} {'route':<22} {'mode':<4} {'p50 x':>8} {'rps x':>8}")
    for size in sizes:
        for label in labels[1:]:
            for mode in MODES:
                row, floor = results[size, label, mode], results[size, FLOOR, mode]
                p50 = ratio(row["p50"], floor["p50"])
                rps = ratio(row["rps"], floor["rps"])
                print(
                    f"{size:>5} {label:<22} {mode:<4} {fmt(p50, '.2f'):>8} "
                    f"{fmt(rps, '.3f'):>8}"
                )

    small, large = sizes
    print(f"\nRatio {large} vs {small} mailboxes (>1 for p50/p95 = slower)")
    print(f"{'route':<22} {'mode':<4} {'p50 x':>8} {'p95 x':>8} {'rps x':>8}")
    for label in labels:
        for mode in MODES:
            big, ref = results[large, label, mode], results[small, label, mode]
            cells = [ratio(big[key], ref[key]) for key in ("p50", "p95", "rps")]
            print(
                f"{label:<22} {mode:<4} "
                + " ".join(f"{fmt(cell, '.2f'):>8}" for cell in cells)
            )

    failures = [(key, row) for key, row in results.items() if row["errors"]]
    for (size, label, mode), row in failures:
        print(f"\nErrors, {size} {label} {mode}:")
        for error, count in row["errors"].most_common(5):
            print(f"  {count} x {error}")
    log_errors = [line for row in results.values() for line in row["log_errors"]]
    if log_errors:
        print(f"\n{len(log_errors)} ERROR line(s) in {SERVER_LOG}, first ones:")
        print("\n".join(log_errors[:5]))


def size_label(size):
    return f"{size // 1000}k"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="1k and 10k mailboxes instead of 100k"
    )
    sizes = (1_000, 10_000) if parser.parse_args().quick else (1_000, 100_000)
    locate_odoo()
    odoo = bootstrap()
    master, customer = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    process = None
    try:
        install(odoo)
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        with SERVER_LOG.open("w") as log:
            process, base = start_server(odoo, master, log)
        print(f"Odoo serves {DB} at {base} (log: {SERVER_LOG})", flush=True)
        domains = create_tenant(base, master, customer)
        plan = targets(customer, domains)
        results = {}
        for size in sizes:
            count = fill_mailboxes(odoo.cluster, size)
            print(f"{count} mailboxes in the table; measuring ...", flush=True)
            for target, mode in itertools.product(plan, MODES):
                row = measure(base, target, mode)
                results[size_label(size), target[0], mode] = row
                print(f"  {target[0]} {mode}: p50 {fmt(row['p50'])} ms", flush=True)
        labels = [target[0] for target in plan]
        report(results, [size_label(size) for size in sizes], labels)
    finally:
        if process:
            stop_server(process)
        odoo.cluster.drop_database(DB)
        odoo.cluster.stop()


if __name__ == "__main__":
    try:
        main()
    except (BenchError, SetupError) as error:
        sys.exit(f"bench: {error}")
    except KeyboardInterrupt:
        sys.exit(130)
