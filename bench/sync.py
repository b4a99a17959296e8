"""Benchmark of connected mode: creating mailboxes through a server that
provisions an upstream, against creating them on the upstream directly.

Why: with ``emboux_mail.upstream_url`` set, every mailbox a customer creates
on server A is sent to the upstream B's REST API before A answers, so each
create costs A's own work plus a full create on B. The product aims at no
more than 1.5 times the time of creating the same mailboxes on B directly.
This script measures that ratio in one run on one machine, side by side,
and checks that every mailbox A accepted is really on B. Two ways to create
on A: one REST request per mailbox (A's own create plus B's in every
request), and one save of all of them through A's ORM (an import), which A
sends to B once committed. It prints numbers
and ratios and asserts nothing: the absolute numbers belong to the machine.

    .venv/bin/python bench/sync.py [--requests 200] [--clients 4]

The run is bounded: a fixed number of requests per path, a timeout per
request, and both servers and both databases (``emboux_bench_sync_a``,
``emboux_bench_sync_b``) are removed at the end, also after an error or
Ctrl-C.
"""

import argparse
import secrets
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from _measure import (
    PASSWORD,
    fmt,
    mailbox_target,
    measure,
    print_failures,
    ratio,
)
from _server import LOG_DIR, TIMEOUT, Bench, BenchError, create_tenant, run_main

DB_A, DB_B = "emboux_bench_sync_a", "emboux_bench_sync_b"
INIT_LOGS = {DB_A: "bench-sync-init-a.log", DB_B: "bench-sync-init-b.log"}
LOG_A, LOG_B = LOG_DIR / "bench-sync-a.log", LOG_DIR / "bench-sync-b.log"
LOGS = {"A": LOG_A, "B": LOG_B}
DOMAINS = 10  # per path: the creates are spread over them
WARMUP = 10
TARGET_RATIO = 1.5
PAGE = 100
PATHS = {
    "a": "(a) on A, sent to B",
    "b": "(b) on B directly",
}
SAVE = "(c) one save on A"


# -- servers --------------------------------------------------------------------
def install_both(bench):
    """Both fresh databases, installed at the same time."""
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda db: bench.install(db, INIT_LOGS[db]), (DB_A, DB_B)))


def connect_upstream(cluster, base_b, master_b):
    """A's Settings > Email Hosting: the upstream's URL and master token,
    written before A starts (nothing of A has cached them yet)."""
    rows = ", ".join(
        f"('{key}', '{value}', 1, 1, now() at time zone 'utc', "
        "now() at time zone 'utc')"
        for key, value in (
            ("emboux_mail.upstream_url", base_b),
            ("emboux_mail.upstream_token", master_b),
        )
    )
    cluster.psql(
        "INSERT INTO ir_config_parameter (key, value, create_uid, write_uid, "
        f"create_date, write_date) VALUES {rows} "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        dbname=DB_A,
    )


# -- the two paths ----------------------------------------------------------------
def emails(base, token):
    """Every mailbox address ``token`` sees, read a page at a time."""
    found, offset = set(), 0
    headers = {"Authorization": f"Bearer {token}"}
    with requests.Session() as session:
        while True:
            response = session.get(
                f"{base}/users/?limit={PAGE}&offset={offset}",
                headers=headers,
                timeout=TIMEOUT,
            )
            if response.status_code != 200:
                raise BenchError(f"GET /users/ on {base}: {response.status_code}")
            page = response.json()
            found.update(item["email"] for item in page)
            if len(page) < PAGE:
                return found
            offset += PAGE


def one_save(base_a, domains, count):
    """``count`` mailboxes in one save through A's ORM over JSON-RPC (an
    import, a wizard): A sends them to B once the save is committed, before
    it answers. Returns (seconds, the addresses)."""
    session = requests.Session()

    def rpc(service, method, *args):
        payload = {
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"service": service, "method": method, "args": args},
        }
        reply = session.post(f"{base_a}/jsonrpc", json=payload, timeout=600).json()
        if "error" in reply:
            raise BenchError(f"{method} on A: {reply['error']['data']['message']}")
        return reply.get("result")

    with session:
        uid = rpc("common", "login", DB_A, "admin", "admin")
        addresses = [f"save-{n}@{domains[n % len(domains)]}" for n in range(count)]
        vals = [{"email": email, "password": PASSWORD} for email in addresses]
        start = time.perf_counter()
        rpc(
            "object",
            "execute_kw",
            DB_A,
            uid,
            "admin",
            "emboux.mail.mailbox",
            "create",
            [vals],
        )
        return time.perf_counter() - start, addresses


def outbox(cluster):
    """A's outbox rows by state (``done`` once delivered upstream)."""
    lines = cluster.psql(
        "SELECT state, count(*) FROM emboux_mail_sync_event "
        "GROUP BY state ORDER BY state",
        dbname=DB_A,
    )
    return ", ".join(line.replace("|", " ") for line in lines.splitlines()) or "empty"


# -- report ---------------------------------------------------------------------
def median(values):
    return statistics.median(values) if values else None


def report(results, checks, count, modes):
    print(
        f"\n{count} mailboxes per path and mode, after {WARMUP} warm-up creates "
        "(not counted);\nseq = one keep-alive client, xN = N concurrent clients "
        "with a session each.\np50/p95: latency in ms of the 201 answers; req/s: "
        "201 answers per second;\nerr: other answers or none; retries: Odoo's "
        "replays after a PostgreSQL concurrency\nfailure in A's and B's logs "
        "during the row.\n"
    )
    head = f"{'mode':<4} {'path':<21} {'total s':>8} {'p50 ms':>8} {'p95 ms':>8}"
    print(f"{head} {'req/s':>7} {'err':>4} {'retries A/B':>11}")
    for (mode, path), row in results.items():
        err = sum(row["errors"].values())
        retries = f"{row['retries']['A']}/{row['retries']['B']}"
        print(
            f"{mode:<4} {PATHS[path]:<21} {row['seconds']:>8.2f} "
            f"{fmt(row['p50']):>8} {fmt(row['p95']):>8} {fmt(row['rps']):>7} "
            f"{err:>4} {retries:>11}"
        )

    print(
        "\nRatio A/B: the connected path over the direct one "
        f"(target <= {TARGET_RATIO}x)"
    )
    print(f"{'mode':<4} {'total':>7} {'p50':>7} {'p95':>7}  target")
    for mode in modes:
        a, b = results[mode, "a"], results[mode, "b"]
        total = ratio(a["seconds"], b["seconds"])
        cells = [total, ratio(a["p50"], b["p50"]), ratio(a["p95"], b["p95"])]
        verdict = "met" if total and total <= TARGET_RATIO else "not met"
        print(
            f"{mode:<4} "
            + " ".join(f"{fmt(cell, '.2f') + 'x':>7}" for cell in cells)
            + f"  <= {TARGET_RATIO}x: {verdict}"
        )

    print(
        "\nServer time per create, median ms by Odoo's access lines (A's "
        "includes its call\nto B; B's in an (a) row is what it spent on A's "
        "calls)"
    )
    print(f"{'mode':<4} {'path':<21} {'on A':>6} {'on B':>6}")
    for (mode, path), row in results.items():
        cells = [row["served"][server] for server in ("A", "B")]
        print(
            f"{mode:<4} {PATHS[path]:<21} "
            + " ".join(f"{fmt(median(cell)):>6}" for cell in cells)
        )

    print("\nThe mailboxes of (a), looked up with GET /users/ (paged) on each server")
    print(f"{'mode':<4} {'sent':>5} {'201 from A':>10} {'on A':>5} {'on B':>5}")
    for mode in modes:
        check = checks[mode]
        print(
            f"{mode:<4} {count:>5} {results[mode, 'a']['ok']:>10} "
            f"{check['A']:>5} {check['B']:>5}"
        )
    save = checks["save"]
    print(
        f"\n{SAVE}: {count} mailboxes in one create over JSON-RPC (an import), "
        f"sent to B\nbefore A answers: {save['seconds']:.2f} s, on B afterwards "
        f"{save['B']}/{count}; against (b) seq {results['seq', 'b']['seconds']:.2f} s: "
        f"{fmt(ratio(save['seconds'], results['seq', 'b']['seconds']), '.2f')}x "
        f"(target <= {TARGET_RATIO}x)"
    )
    print(f"A's outbox (emboux_mail_sync_event rows by state): {checks['outbox']}")
    print_failures(
        results, lambda key: f"{key[0]} {PATHS[key[1]]}", f"{LOG_A} or {LOG_B}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=200, help="mailboxes per path and mode"
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=4,
        help="clients of the concurrent mode (0: sequential only)",
    )
    args = parser.parse_args()
    modes = {"seq": 1}
    if args.clients > 1:
        modes[f"x{args.clients}"] = args.clients
    master_a, master_b, tenant_a, tenant_b, secret = (
        secrets.token_urlsafe(32) for _ in range(5)
    )
    with Bench([DB_A, DB_B]) as bench:
        install_both(bench)
        base_b = bench.serve(DB_B, LOG_B, {"EMBOUX_API_KEY": master_b})
        connect_upstream(bench.cluster, base_b, master_b)
        env_a = {"EMBOUX_API_KEY": master_a, "EMBOUX_SECRET_KEY": secret}
        base_a = bench.serve(DB_A, LOG_A, env_a)
        print(f"B serves {DB_B} at {base_b} (log: {LOG_B})")
        print(f"A serves {DB_A} at {base_a}, upstream B (log: {LOG_A})", flush=True)
        domains_a = [f"connected{n:02d}.example" for n in range(DOMAINS)]
        domains_b = [f"direct{n:02d}.example" for n in range(DOMAINS)]
        print(
            f"Creating a tenant and {DOMAINS} domains on A (so on B) and on B ...",
            flush=True,
        )
        with requests.Session() as session:
            create_tenant(
                session, base_a, master_a, tenant_a, "bench_connected", domains_a
            )
            create_tenant(
                session, base_b, master_b, tenant_b, "bench_direct", domains_b
            )
        results, checks = {}, {}
        for mode, clients in modes.items():
            sent = []
            target = mailbox_target(tenant_a, domains_a, f"{mode}-", sent)
            results[mode, "a"] = measure(
                base_a, target, args.requests, clients, WARMUP, LOGS
            )
            # the first WARMUP addresses went to the warm-up requests
            mine = set(sent[WARMUP:])
            checks[mode] = {
                "A": len(mine & emails(base_a, tenant_a)),
                "B": len(mine & emails(base_b, master_b)),
            }
            target = mailbox_target(tenant_b, domains_b, f"{mode}-", [])
            results[mode, "b"] = measure(
                base_b, target, args.requests, clients, WARMUP, LOGS
            )
            print(
                f"  {mode}: (a) {results[mode, 'a']['seconds']:.2f} s, "
                f"(b) {results[mode, 'b']['seconds']:.2f} s",
                flush=True,
            )
        seconds, addresses = one_save(base_a, domains_a, args.requests)
        found = len(set(addresses) & emails(base_b, master_b))
        checks["save"] = {"seconds": seconds, "B": found}
        checks["outbox"] = outbox(bench.cluster)
        report(results, checks, args.requests, modes)


if __name__ == "__main__":
    run_main(main)
