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
import secrets

import psycopg2
import requests
from _measure import PASSWORD, fmt, mailbox_target, merge, print_failures, ratio
from _measure import measure as bench_measure
from _server import LOG_DIR, Bench, create_tenant, run_main
from passlib.hash import sha512_crypt
from psycopg2.extras import execute_values

DB = "emboux_bench"
TENANT = "bench_tenant"
DOMAINS = 1000
WARMUP = 20
REQUESTS = 300
ROUNDS = 5
CLIENTS = 8
SERVER_LOG = LOG_DIR / "bench-server.log"
MODES = ("seq", f"x{CLIENTS}")
FLOOR = "GET /web/health"


# -- data -----------------------------------------------------------------------
def create_domains(base, master, customer):
    """One tenant key without quotas and its domains, through the API."""
    names = [f"bench{n:04d}.example" for n in range(DOMAINS)]
    print(f"Creating the tenant key and {DOMAINS} domains over HTTP ...", flush=True)
    with requests.Session() as session:
        create_tenant(session, base, master, customer, TENANT, names)
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
    """Two groups measured one after the other, each with the floor:
    the reads, then the writes (which add mailboxes, so that the reads see
    exactly the size measured). A target is (label, method, path, headers,
    body factory, expected status)."""
    auth = {"Authorization": f"Bearer {customer}"}
    floor = (FLOOR, "GET", "/web/health", {}, None, 200)
    return [
        [
            floor,
            ("GET /domains/", "GET", "/domains/", auth, None, 200),
            ("GET /users/?limit=100", "GET", "/users/?limit=100", auth, None, 200),
        ],
        [floor, mailbox_target(customer, domains, "post")],
    ]


def measure(base, targets, mode):
    """The rows of ``targets`` measured side by side: each one's requests
    in ``ROUNDS`` slices, the targets taking turns, so that a change in the
    machine's load during the run falls on all of them alike and their
    ratios hold."""
    clients = 1 if mode == "seq" else CLIENTS
    logs = {"server": SERVER_LOG}
    slices = {target[0]: [] for target in targets}
    for turn in range(ROUNDS):
        for target in targets:
            warmup = WARMUP if turn == 0 else 0
            row = bench_measure(base, target, REQUESTS // ROUNDS, clients, warmup, logs)
            slices[target[0]].append(row)
    return {label: merge(rows) for label, rows in slices.items()}


# -- report ---------------------------------------------------------------------
def report(results, sizes, groups):
    """The table, the ratios to the floor measured beside each route, and
    the large-vs-small ratios. ``groups``: the labels measured together."""
    print(
        f"\n{REQUESTS} requests per row, in {ROUNDS} slices taking turns with the "
        f"other rows of their group, after {WARMUP} warm-up;\nseq = one client, "
        f"x{CLIENTS} = {CLIENTS} concurrent clients. p50/p95 in ms over the "
        "successful answers;\nrps = successful answers per second; retries = "
        "Odoo's concurrency-failure replays logged\nduring the row.\n"
    )
    head = f"{'size':>5} {'route':<22} {'mode':<4} {'p50':>8} {'p95':>8} {'rps':>7}"
    print(f"{head} {'ok':>4} {'err':>4} {'retries':>7}")
    for (size, _group, label, mode), row in results.items():
        err = sum(row["errors"].values())
        print(
            f"{size:>5} {label:<22} {mode:<4} {fmt(row['p50']):>8} "
            f"{fmt(row['p95']):>8} {fmt(row['rps']):>7} {row['ok']:>4} {err:>4} "
            f"{row['retries']['server']:>7}"
        )

    print(f"\nRatio to {FLOOR} measured beside it (p50: x slower, rps: fraction)")
    print(f"{'size':>5} {'route':<22} {'mode':<4} {'p50 x':>8} {'rps x':>8}")
    for size in sizes:
        for group, labels in enumerate(groups):
            for label in labels[1:]:
                for mode in MODES:
                    row = results[size, group, label, mode]
                    floor = results[size, group, FLOOR, mode]
                    p50 = ratio(row["p50"], floor["p50"])
                    rps = ratio(row["rps"], floor["rps"])
                    print(
                        f"{size:>5} {label:<22} {mode:<4} {fmt(p50, '.2f'):>8} "
                        f"{fmt(rps, '.3f'):>8}"
                    )

    small, large = sizes
    print(f"\nRatio {large} vs {small} mailboxes (>1 for p50/p95 = slower)")
    print(f"{'route':<22} {'mode':<4} {'p50 x':>8} {'p95 x':>8} {'rps x':>8}")
    for group, labels in enumerate(groups):
        for label in labels[1:] if group else labels:
            for mode in MODES:
                big = results[large, group, label, mode]
                ref = results[small, group, label, mode]
                cells = [ratio(big[key], ref[key]) for key in ("p50", "p95", "rps")]
                print(
                    f"{label:<22} {mode:<4} "
                    + " ".join(f"{fmt(cell, '.2f'):>8}" for cell in cells)
                )
    print_failures(results, lambda key: " ".join(map(str, key)), SERVER_LOG)


def size_label(size):
    return f"{size // 1000}k"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="1k and 10k mailboxes instead of 100k"
    )
    sizes = (1_000, 10_000) if parser.parse_args().quick else (1_000, 100_000)
    master, customer = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with Bench([DB]) as bench:
        bench.install(DB, "bench-init.log")
        base = bench.serve(DB, SERVER_LOG, {"EMBOUX_API_KEY": master})
        print(f"Odoo serves {DB} at {base} (log: {SERVER_LOG})", flush=True)
        domains = create_domains(base, master, customer)
        groups = targets(customer, domains)
        results = {}
        for size in sizes:
            count = fill_mailboxes(bench.cluster, size)
            print(f"{count} mailboxes in the table; measuring ...", flush=True)
            for (group, plan), mode in itertools.product(enumerate(groups), MODES):
                for label, row in measure(base, plan, mode).items():
                    results[size_label(size), group, label, mode] = row
                    print(f"  {label} {mode}: p50 {fmt(row['p50'])} ms", flush=True)
        labels = [[target[0] for target in plan] for plan in groups]
        report(results, [size_label(size) for size in sizes], labels)


if __name__ == "__main__":
    run_main(main)
