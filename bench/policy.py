"""Benchmark of the outbound policy daemon beside a do-nothing policy server.

Why: Postfix asks the daemon (``emboux_mail_api/services/policyd.py``) at
every RCPT and at the end of every message of an authenticated submission,
so what it costs is waiting time of each message. The script measures its
decisions per second and its latency against a policy server that answers
DUNNO without looking at anything (the same server and handler classes, no
database), in the same run, through the same client: N processes, each with
one persistent connection, sending a mix of RCPT and END-OF-MESSAGE requests
as Postfix does for domains far from their limits (``--domains``: how
many, each client sending for one; 1 puts every message on the same
counter row, whose lock then sets the pace). It prints both, the
ratio and the targets (p99 <= 5 ms, rate >= 0.5x the do-nothing rate), and
asserts nothing: the numbers belong to the machine.

A third row, ``in-process``, shows the database's share: each client
process calls the daemon's own decision code (``OutboundPolicy.decide``,
one database connection each) for the same requests, without a server or
a socket in between.

    .venv/bin/python bench/policy.py [--clients 8] [--requests 20000]
                                     [--socket inet|unix] [--domains 8]

The run is bounded (a fixed number of requests, a timeout per answer) and
removes what it made at the end, also after an error or Ctrl-C: both policy
servers, the ``emboux_bench_policy`` database and the policy role.
"""

import argparse
import contextlib
import logging
import multiprocessing
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psycopg2
from _measure import fmt, ratio
from _server import LOG_DIR, Bench, BenchError, run_main

REPO = Path(__file__).resolve().parents[1]
SERVICES = REPO / "emboux_mail_api" / "services"
sys.path.insert(0, str(SERVICES))

import mailserver  # noqa: E402
import policyd  # noqa: E402

DB = "emboux_bench_policy"
ROLE = "emboux_bench_policy"
# the sending domains: each client sends for one of them, as a mail host
# serves many customers at once (``--domains 1``: all on one counter row)
DOMAINS = 8
# recipients per message, in turn: 1.6 RCPT requests per END-OF-MESSAGE
RECIPIENTS = (1, 1, 2, 1, 3)
CLIENTS = 8
REQUESTS = 20000
WARMUP = 100  # per connection and server, answers not timed
ANSWER_TIMEOUT = 30  # seconds
TARGET_P99_MS = 5.0
TARGET_RATE = 0.5
SERVERS = ("do-nothing", "policyd")
ROWS = ("do-nothing", "in-process", "policyd")
PREFIXES = {"do-nothing": "n", "in-process": "i", "policyd": "p"}
LOGS = {
    "do-nothing": LOG_DIR / "bench-policy-dunno.log",
    "policyd": LOG_DIR / "bench-policyd.log",
}


# -- data -----------------------------------------------------------------------
def domain_name(index):
    return f"policy-bench-{index}.example"


def create_domains_and_role(cluster, password, count):
    """The sending domains (rows in SQL: the policy functions read nothing
    else), with limits far above what the run sends, and the daemon's role."""
    dsn = cluster.dsn_args  # Odoo's own connection: the socket, role emboux
    connection = psycopg2.connect(
        host=dsn["db_host"], port=dsn["db_port"], user=dsn["db_user"], dbname=DB
    )
    with contextlib.closing(connection):
        with connection, connection.cursor() as cr:
            cr.executemany(
                """
                INSERT INTO emboux_mail_domain (
                    name, company_id, dns_state, outbound_tier, outbound_status,
                    outbound_enforcement, verified, suspended,
                    outbound_daily_limit, outbound_monthly_limit, transfer_monthly_mb)
                VALUES (%s, (SELECT min(id) FROM res_company), 'unchecked',
                        'shared', 'active', 'hard', true, false,
                        10000000, 100000000, 10000000)
                """,
                [(domain_name(index),) for index in range(count)],
            )
    cluster.psql(mailserver.policy_role_sql(ROLE, password, DB), dbname=DB)


def counted(cluster, prefix):
    """(messages recorded with a queue id starting with ``prefix``, the
    domain's sent_month)."""
    rows = cluster.psql(
        "SELECT count(*) FROM emboux_mailserver.outbound_message "
        f"WHERE queue_id LIKE '{prefix}%'",
        dbname=DB,
    )
    sent = cluster.psql(
        "SELECT coalesce(sum(c.sent_month), 0) FROM emboux_mail_outbound_counter c "
        "JOIN emboux_mail_domain d ON d.id = c.domain_id "
        "WHERE d.name LIKE 'policy-bench-%'",
        dbname=DB,
    )
    return int(rows), int(sent)


def vacuum(cluster):
    """Every message updates the domain's one counter row: start each row
    of the table from the same clean state, not from the dead row versions
    the previous one left."""
    for table in ("emboux_mail_outbound_counter", "emboux_mailserver.outbound_message"):
        cluster.psql(f"VACUUM ANALYZE {table}", dbname=DB)


# -- requests ---------------------------------------------------------------------
def encode(state, queue_id, recipients, sender, instance):
    """One request with every attribute Postfix 3.x sends at submission."""
    attributes = {
        "request": "smtpd_access_policy",
        "protocol_state": state,
        "protocol_name": "ESMTP",
        "client_address": "192.0.2.10",
        "client_name": "unknown",
        "client_port": "51234",
        "reverse_client_name": "unknown",
        "server_address": "192.0.2.1",
        "server_port": "587",
        "helo_name": "laptop.example.net",
        "sender": sender,
        "recipient": "friend@example.net" if state == "RCPT" else "",
        "recipient_count": recipients,
        "queue_id": queue_id,
        "instance": instance,
        "size": 24576,
        "etrn_domain": "",
        "stress": "",
        "sasl_method": "PLAIN",
        "sasl_username": sender,
        "sasl_sender": "",
        "ccert_subject": "",
        "ccert_issuer": "",
        "ccert_fingerprint": "",
        "ccert_pubkey_fingerprint": "",
        "encryption_protocol": "TLSv1.3",
        "encryption_cipher": "TLS_AES_256_GCM_SHA384",
        "encryption_keysize": "256",
        "policy_context": "",
        "compatibility_level": "3.6",
        "mail_version": "3.7.11",
    }
    lines = "".join(f"{name}={value}\n" for name, value in attributes.items())
    return (lines + "\n").encode()


def workload(prefix, count, domain="policy-bench-0.example"):
    """``count`` requests of messages in turn: RCPT for each recipient,
    then END-OF-MESSAGE with a new queue id. Returns (payloads, states)."""
    payloads, states, message = [], [], 0
    sender = f"sender@{domain}"
    while len(payloads) < count:
        recipients = RECIPIENTS[message % len(RECIPIENTS)]
        # one SMTP transaction: its requests share an instance
        instance = f"{prefix}.{message:x}.0"
        for _ in range(recipients):
            payloads.append(encode("RCPT", "", 0, sender, instance))
            states.append("RCPT")
        queue_id = f"{prefix}{message:07d}"
        end = encode("END-OF-MESSAGE", queue_id, recipients, sender, instance)
        payloads.append(end)
        states.append("END-OF-MESSAGE")
        message += 1
    return payloads[:count], states[:count]


# -- the client -------------------------------------------------------------------
def connect(listen):
    if listen.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(listen[len("unix:") :])
    else:
        host, _sep, port = listen.rpartition(":")
        sock = socket.create_connection((host, int(port)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(ANSWER_TIMEOUT)
    return sock


def exchange(sock, payload):
    sock.sendall(payload)
    answer = sock.recv(4096)
    while not answer.endswith(b"\n\n"):
        more = sock.recv(4096)
        if not more:
            raise ConnectionError("the policy server closed the connection")
        answer += more
    return answer


@contextlib.contextmanager
def asker(target):
    """``ask(payload) -> answer`` for ``target``: ``("socket", listen)``, a
    policy server, or ``("in-process", dsn)``, the daemon's decision code
    called right here."""
    kind, where = target
    if kind == "socket":
        with connect(where) as sock:
            yield lambda payload: exchange(sock, payload)
        return
    policy = policyd.OutboundPolicy(policyd.Database(where, size=1))
    try:
        yield lambda payload: policyd.format_action(
            policy.decide(policyd.parse_request(payload[:-2]))
        )
    finally:
        policy.close()


def drive(target, warmup, timed, barrier, results, index):
    """One client process: its warm-up requests, then, once every client
    is ready, its timed ones; puts (index, seconds per request, unexpected
    answers, start, end, error) on ``results``."""
    try:
        with asker(target) as ask:
            for payload in warmup:
                ask(payload)
            barrier.wait(ANSWER_TIMEOUT)
            latencies, unexpected = [], Counter()
            start = time.monotonic()
            for payload in timed:
                began = time.perf_counter()
                answer = ask(payload)
                latencies.append(time.perf_counter() - began)
                if answer != b"action=DUNNO\n\n":
                    unexpected[answer.decode(errors="replace").strip()] += 1
            end = time.monotonic()
        results.put((index, latencies, unexpected, start, end, None))
    except Exception as error:  # reported by the parent
        barrier.abort()
        results.put((index, [], Counter(), 0.0, 0.0, repr(error)))


def measure(target, clients, requests, prefix, domains):
    """Every client's warm-up, then ``requests`` timed requests spread over
    the ``clients`` clients at once, client i sending for domain i % N."""
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(clients), context.Queue()
    per_client = requests // clients
    processes, warm_messages = [], 0
    for index in range(clients):
        domain = domain_name(index % domains)
        warmup, warm_states = workload(f"{prefix}w{index:02d}x", WARMUP, domain)
        warm_messages += warm_states.count("END-OF-MESSAGE")
        timed, states = workload(f"{prefix}t{index:02d}x", per_client, domain)
        process = context.Process(
            target=drive,
            args=(target, warmup, timed, barrier, results, index),
            daemon=True,
        )
        processes.append((process, states))
        process.start()
    rows = [results.get(timeout=600) for _ in processes]
    for process, _states in processes:
        process.join(10)
    errors = [row[5] for row in rows if row[5]]
    if errors:
        raise BenchError(f"a client failed against {target[1]}: {errors[0]}")
    by_state = {"RCPT": [], "END-OF-MESSAGE": []}
    unexpected = Counter()
    for index, latencies, answers, _start, _end, _error in rows:
        unexpected.update(answers)
        for state, seconds in zip(processes[index][1], latencies, strict=True):
            by_state[state].append(seconds * 1000)
    seconds = max(row[4] for row in rows) - min(row[3] for row in rows)
    every = by_state["RCPT"] + by_state["END-OF-MESSAGE"]
    return {
        "rate": len(every) / seconds,
        "all": cuts(every),
        **{state: cuts(values) for state, values in by_state.items()},
        "unexpected": unexpected,
        "messages": len(by_state["END-OF-MESSAGE"]) + warm_messages,
    }


def cuts(values):
    """p50, p99 and max of ``values`` (ms)."""
    if len(values) < 2:
        return {"p50": None, "p99": None, "max": None, "count": len(values)}
    percentiles = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "p50": percentiles[49],
        "p99": percentiles[98],
        "max": max(values),
        "count": len(values),
    }


# -- the servers ------------------------------------------------------------------
def serve_dunno(listen):
    """The do-nothing policy server (this script run with --serve-dunno):
    the daemon's own server and handler, a policy that always says DUNNO."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s dunno: %(message)s"
    )
    stop = policyd.stop_on_signals()
    server = policyd.make_server(listen, policyd.Policy())
    logging.getLogger("policyd").info("listening on %s", listen)
    policyd.serve(server, stop)


def start(cmd, log_path, listen):
    """A policy server process, once it accepts connections."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{cmd[1]} exited at start; its log is {log_path}")
        with contextlib.suppress(OSError):
            connect(listen).close()
            return process
        time.sleep(0.1)
    process.kill()
    raise BenchError(f"{cmd[1]} did not listen on {listen}; its log is {log_path}")


def stop(process, name):
    """SIGTERM, the daemon's graceful stop; say so when it was not clean."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    if process.returncode != 0:
        print(f"{name} exited with status {process.returncode}; see {LOGS[name]}")


def addresses(kind, folder):
    if kind == "unix":
        return {name: f"unix:{folder}/{name}.sock" for name in SERVERS}
    ports = {}
    for name in SERVERS:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports[name] = f"127.0.0.1:{sock.getsockname()[1]}"
    return ports


# -- report -----------------------------------------------------------------------
def report(results, args, recorded):
    mix = Counter()
    for state in workload("x", 1000)[1]:
        mix[state] += 1
    print(
        f"\n{args.clients} persistent connections over {args.socket} sockets, "
        f"{args.requests} timed requests per row after {WARMUP} warm-up ones "
        f"per connection;\n{mix['RCPT'] / 10:.0f}% RCPT, "
        f"{mix['END-OF-MESSAGE'] / 10:.0f}% END-OF-MESSAGE, "
        f"{args.domains} domain(s) far from their limits\n"
    )
    head = f"{'measured':<12} {'requests':<15} {'decisions/s':>11}"
    print(f"{head} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'unexpected':>10}")
    for name in ROWS:
        row = results[name]
        for label in ("all", "RCPT", "END-OF-MESSAGE"):
            cut = row[label]
            rate = fmt(row["rate"], ".0f") if label == "all" else ""
            odd = sum(row["unexpected"].values()) if label == "all" else ""
            print(
                f"{name if label == 'all' else '':<12} {label:<15} {rate:>11} "
                f"{fmt(cut['p50'], '.2f'):>7} {fmt(cut['p99'], '.2f'):>7} "
                f"{fmt(cut['max'], '.1f'):>7} {odd!s:>10}"
            )
    floor, daemon = results["do-nothing"], results["policyd"]
    direct = results["in-process"]
    rate_x = ratio(daemon["rate"], floor["rate"])
    p99 = daemon["all"]["p99"]
    print("\npolicyd / do-nothing:")
    print(
        f"  rate {fmt(rate_x, '.2f')}x (target >= {TARGET_RATE}x: "
        f"{verdict(rate_x is not None and rate_x >= TARGET_RATE)})"
    )
    print(
        f"  p99  {fmt(p99, '.2f')} ms (target <= {TARGET_P99_MS:g} ms: "
        f"{verdict(p99 is not None and p99 <= TARGET_P99_MS)}), "
        f"{fmt(ratio(p99, floor['all']['p99']), '.1f')}x the do-nothing p99"
    )
    print(
        f"policyd / in-process (the same decisions without the daemon): rate "
        f"{fmt(ratio(daemon['rate'], direct['rate']), '.2f')}x, p50 "
        f"{fmt(ratio(daemon['all']['p50'], direct['all']['p50']), '.2f')}x"
    )
    print("\nMessages counted (warm-up included):")
    for name in ("in-process", "policyd"):
        print(
            f"  {name:<10} {recorded[name]} queue ids recorded for "
            f"{results[name]['messages']} END-OF-MESSAGE requests"
        )
    expected = sum(results[name]["messages"] for name in ("in-process", "policyd"))
    print(f"  domains' sent_month {recorded['sent']} (expected {expected})")
    for name in ROWS:
        for answer, count in results[name]["unexpected"].most_common(3):
            print(f"  {name}: {count} x {answer}")


def verdict(met):
    return "met" if met else "NOT met"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--socket", choices=("inet", "unix"), default="inet")
    parser.add_argument("--domains", type=int, default=DOMAINS)
    parser.add_argument("--serve-dunno", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_dunno:
        serve_dunno(args.serve_dunno)
        return
    run = secrets.token_hex(2)
    with Bench([DB]) as bench, tempfile.TemporaryDirectory() as folder:
        processes = {}
        try:
            bench.install(DB, "bench-policy-init.log")
            password = secrets.token_urlsafe(18)
            create_domains_and_role(bench.cluster, password, args.domains)
            dsn_file = Path(folder) / "policyd.dsn"
            dsn_file.write_text(
                f"host=127.0.0.1 port={bench.cluster.port} dbname={DB} "
                f"user={ROLE} password={password}\n"
            )
            os.chmod(dsn_file, 0o600)
            listen = addresses(args.socket, folder)
            commands = {
                "do-nothing": [
                    sys.executable,
                    __file__,
                    "--serve-dunno",
                    listen["do-nothing"],
                ],
                "policyd": [
                    sys.executable,
                    str(SERVICES / "policyd.py"),
                    "--listen",
                    listen["policyd"],
                    "--dsn-file",
                    str(dsn_file),
                ],
            }
            for name in SERVERS:
                processes[name] = start(commands[name], LOGS[name], listen[name])
                print(f"{name} listens on {listen[name]} (log: {LOGS[name]})")
            targets = {name: ("socket", listen[name]) for name in SERVERS}
            targets["in-process"] = ("in-process", dsn_file.read_text().strip())
            results, recorded = {}, {}
            for name in ROWS:
                print(f"Measuring {name} ...", flush=True)
                vacuum(bench.cluster)
                prefix = f"B{run}{PREFIXES[name]}"
                results[name] = measure(
                    targets[name], args.clients, args.requests, prefix, args.domains
                )
                recorded[name], recorded["sent"] = counted(bench.cluster, prefix)
            report(results, args, recorded)
        finally:
            for name, process in processes.items():
                stop(process, name)
            bench.drop(DB)
            bench.cluster.psql(f"DROP ROLE IF EXISTS {ROLE}", check=False)


if __name__ == "__main__":
    run_main(main)
