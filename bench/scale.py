"""Benchmark of the REST API's throughput in three layouts on one machine.

Why: to see how much more ``GET /domains/`` and ``POST /users/`` serve
when Odoo runs prefork workers instead of threads, and then two prefork
nodes on one database behind nginx (the layout of
``setup/nginx/emboux-mail.conf``), each next to Odoo's own floor
(``/web/health``) in the same layout, and how busy the machine's CPUs are
meanwhile: the layouts share the same CPUs, so the ceiling may be the
machine rather than the layout. It prints requests per second, ratios and
CPU shares and asserts nothing: the absolute numbers belong to the machine.

    .venv/bin/python bench/scale.py [--quick]

The run is bounded: a fixed number of requests per measurement, a timeout
per request, one layout running at a time, and the servers, nginx and the
``emboux_bench_scale`` database are removed at the end, also after an error
or Ctrl-C.
"""

import argparse
import contextlib
import os
import secrets
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import requests
from _measure import fmt, mailbox_target, measure, print_failures, ratio, run
from _server import LOG_DIR, Bench, BenchError, create_tenant, run_main
from emboux_setup.nginx import Nginx
from emboux_setup.processes import free_port, group_members

DB = "emboux_bench_scale"
TENANT = "bench_scale_tenant"
DOMAINS = 10
CLIENTS = 8
WARMUP = 20
FLOOR = "GET /web/health"
# timed requests per measurement: each route's takes a few seconds
REQUESTS = {FLOOR: 2000, "GET /domains/": 1000, "POST /users/": 300}
# name, name in the log files, nodes, prefork workers per node (0: threaded)
LAYOUTS = [
    ("1 process", "process", 1, 0),
    ("2 workers", "workers", 1, 2),
    ("2 nodes x 2", "nodes", 2, 2),
]
NGINX_DIR = LOG_DIR / "bench-scale-nginx"
SERVER_LOGS = LOG_DIR / "bench-scale-*.log"
CPU_BOUND = 90  # % of all CPUs busy from which a measurement is CPU-bound
PARTS = ("odoo", "pg", "nginx", "client", "other")


# -- servers --------------------------------------------------------------------
def start_nginx(ports, gevent_ports):
    """Debian's nginx with the repository's sample site, in a fresh folder
    so that its logs are this run's only."""
    shutil.rmtree(NGINX_DIR, ignore_errors=True)
    try:
        return Nginx(NGINX_DIR, ports, gevent_ports)
    except AssertionError as error:
        raise BenchError(f"nginx: {error}") from None


@contextlib.contextmanager
def serving(bench, layout, master):
    """The layout's odoo-bin nodes, and nginx in front of them when there
    are two. Yields the clients' URL, the nodes' logs and the process
    groups; stops them all at the end, so that the next layout has the
    machine to itself."""
    name, short, nodes, workers = layout
    logs, ports, gevent_ports, nginx = {}, [], [], None
    try:
        for node in range(1, nodes + 1):
            args = [f"--workers={workers}"]
            if workers:  # a prefork master also starts the websocket's process
                gevent_ports.append(free_port())
                args.append(f"--gevent-port={gevent_ports[-1]}")
            if nodes > 1:
                args.append("--proxy-mode")
            log = logs[f"node {node}"] = LOG_DIR / f"bench-scale-{short}-{node}.log"
            base = bench.serve(DB, log, {"EMBOUX_API_KEY": master}, args)
            ports.append(urlsplit(base).port)
        groups = {"odoo": [process.pid for process in bench.processes]}
        if nodes > 1:
            nginx = start_nginx(ports, gevent_ports)
            base = nginx.url
            groups["nginx"] = [nginx.process.pid]
        where = ", ".join(str(log) for log in logs.values())
        print(f"{name}: {base} (logs: {where})", flush=True)
        yield base, logs, groups
    finally:
        if nginx:
            nginx.stop()
        bench.stop_servers()


# -- CPU ------------------------------------------------------------------------
def machine_ticks():
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat;
    waiting for I/O counts as idle."""
    first = Path("/proc/stat").read_text().split("\n", 1)[0]
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, first.split()[1:9])
    total = user + nice + system + idle + iowait + irq + softirq + steal
    return total - idle - iowait, total


def process_ticks(pid):
    """User and system clock ticks of ``pid`` (all its threads), 0 once gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def cpu_snapshot(cluster, groups):
    """The machine's (busy, total) ticks, and {part: {pid: ticks}} for the
    layout's process ``groups`` ({part: [pgid]}), the database's PostgreSQL
    backends and this script (the clients)."""
    pids = {
        part: [pid for pgid in pgids for pid in group_members(pgid)]
        for part, pgids in groups.items()
    }
    backends = cluster.psql(f"SELECT pid FROM pg_stat_activity WHERE datname = '{DB}'")
    pids["pg"] = [int(pid) for pid in backends.split()]
    pids["client"] = [os.getpid()]
    ticks = {part: {pid: process_ticks(pid) for pid in pids[part]} for part in pids}
    return machine_ticks(), ticks


def cpu_shares(before, after):
    """Each part's share of all CPUs between two snapshots, in %: ``busy``
    for the whole machine, ``other`` for the busy time no part accounts
    for (the cluster's own processes, anything else running)."""
    (busy0, total0), ticks0 = before
    (busy1, total1), ticks1 = after
    span = (total1 - total0) or 1
    shares = {
        part: 100 * sum(n - ticks0[part].get(pid, 0) for pid, n in ticks.items()) / span
        for part, ticks in ticks1.items()
    }
    accounted = sum(shares.values())
    shares["busy"] = 100 * (busy1 - busy0) / span
    shares["other"] = max(0.0, shares["busy"] - accounted)
    return shares


# -- measurement ----------------------------------------------------------------
def targets(customer, domains, short):
    """(label, method, path, headers, body factory, expected status); the
    new addresses of each layout have a prefix of their own."""
    auth = {"Authorization": f"Bearer {customer}"}
    return [
        (FLOOR, "GET", "/web/health", {}, None, 200),
        ("GET /domains/", "GET", "/domains/", auth, None, 200),
        mailbox_target(customer, domains, f"{short}-"),
    ]


def measure_row(bench, base, target, count, logs, groups):
    """Warm-up requests whose answers are not checked, then ``count`` timed
    ones from CLIENTS threads, with the CPU shares during the timed ones."""
    run(base, target, WARMUP, CLIENTS)
    before = cpu_snapshot(bench.cluster, groups)
    row = measure(base, target, count, CLIENTS, 0, logs)
    row["cpu"] = cpu_shares(before, cpu_snapshot(bench.cluster, groups))
    return row


# -- report ---------------------------------------------------------------------
def print_grid(title, labels, columns, cell):
    """One line per route, one column per layout (or pair of layouts)."""
    print(f"\n{title}")
    print(f"{'route':<16}" + "".join(f"{column:>24}" for column in columns))
    for label in labels:
        print(f"{label:<16}" + "".join(f"{cell(label, c):>24}" for c in columns))


def report(results, counts):
    """Every measurement, then the layouts side by side: rps, the fraction
    of the layout's floor, the ratios to one process, and the CPU."""
    names = [layout[0] for layout in LAYOUTS]
    labels = list(counts)
    cpus = os.cpu_count()
    print(
        f"\n{CLIENTS} concurrent clients, each with its own keep-alive session; "
        f"{WARMUP} warm-up requests, then\n"
        + ", ".join(f"{counts[label]} timed ones for {label}" for label in labels)
        + ".\nrps = successful answers per second; p50/p95 in ms; retries = "
        "Odoo's concurrency-failure\nreplays logged during the row. CPU in % of "
        f"all {cpus} CPUs during the timed requests: busy =\nthe whole machine, "
        "odoo = the layout's odoo-bin processes, pg = the database's\n"
        "PostgreSQL backends, client = this script, other = the rest of busy "
        "(other work on\nthe machine included).\n"
    )
    head = f"{'layout':<12} {'route':<16} {'rps':>7} {'p50':>7} {'p95':>7}"
    head += f" {'ok':>5} {'err':>4} {'retries':>7} {'busy':>5}"
    print(head + "".join(f" {part:>6}" for part in PARTS))
    for (name, label), row in results.items():
        cpu, err = row["cpu"], sum(row["errors"].values())
        print(
            f"{name:<12} {label:<16} {fmt(row['rps']):>7} {fmt(row['p50']):>7} "
            f"{fmt(row['p95']):>7} {row['ok']:>5} {err:>4} "
            f"{sum(row['retries'].values()):>7} {cpu['busy']:>5.0f}"
            + "".join(f" {fmt(cpu.get(part), '.0f'):>6}" for part in PARTS)
        )

    def rps(name, label):
        return results[name, label]["rps"]

    def to_floor(label, name):
        return fmt(ratio(rps(name, label), rps(name, FLOOR)), ".3f")

    pairs = {f"{name} / {names[0]}": name for name in names[1:]}

    def between(label, pair):
        return fmt(ratio(rps(pairs[pair], label), rps(names[0], label)), ".2f") + "x"

    def rps_cell(label, name):
        return fmt(rps(name, label))

    print_grid("Requests per second", labels, names, rps_cell)
    title = f"Fraction of the same layout's {FLOOR} rps"
    print_grid(title, labels[1:], names, to_floor)
    print_grid("Ratio between layouts (rps)", labels, list(pairs), between)

    def busy(label, name):
        share = results[name, label]["cpu"]["busy"]
        return f"{share:.0f}%" + (" CPU-bound" if share >= CPU_BOUND else "")

    print_grid(
        f"Machine CPU busy (CPU-bound: at least {CPU_BOUND}% of the {cpus} CPUs)",
        labels,
        names,
        busy,
    )
    print_failures(results, " ".join, SERVER_LOGS)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="a third of the requests per measurement"
    )
    share = 3 if parser.parse_args().quick else 1
    counts = {label: count // share for label, count in REQUESTS.items()}
    master, customer = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    results, domains = {}, []
    with Bench([DB]) as bench:
        bench.install(DB, "bench-scale-init.log")
        for layout in LAYOUTS:
            with serving(bench, layout, master) as (base, logs, groups):
                if not domains:  # POST /users/ needs domains of the tenant's
                    domains = [f"scale{n:02d}.example" for n in range(DOMAINS)]
                    print(f"  a tenant key and {DOMAINS} domains ...", flush=True)
                    with requests.Session() as session:
                        create_tenant(session, base, master, customer, TENANT, domains)
                for target in targets(customer, domains, layout[1]):
                    label = target[0]
                    row = measure_row(bench, base, target, counts[label], logs, groups)
                    results[layout[0], label] = row
                    print(f"  {label}: {fmt(row['rps'])} rps", flush=True)
        report(results, counts)


if __name__ == "__main__":
    run_main(main)
