"""What the benchmarks share to time HTTP requests and read the results.

Why a module: the benchmarks compare their numbers with each other (a
route against ``/web/health``, a connected server against its upstream),
so they must time a request, count a failure and cut percentiles the same
way.

A target is ``(label, method, path, headers, body factory or None,
expected status)``.
"""

import itertools
import re
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests
from _server import TIMEOUT

PASSWORD = "Bench-password-1"
# Odoo's access line: the werkzeug text, then the request's query count,
# query seconds and other seconds
ACCESS_LINE = re.compile(r'"(\S+) (\S+) HTTP/[\d.]+" \d+ - \d+ ([\d.]+) ([\d.]+)')


def mailbox_target(token, domains, prefix, sent=None):
    """``POST /users/`` with ``token``: each request a new address, the
    addresses spread over ``domains`` in turn; each is appended to ``sent``
    (a list), when one is given, as its body is made."""
    serial = itertools.count()

    def new_mailbox():
        n = next(serial)
        domain = domains[n % len(domains)]
        email = f"{prefix}{n}@{domain}"
        if sent is not None:
            sent.append(email)
        return {"domain_name": domain, "email": email, "password": PASSWORD}

    auth = {"Authorization": f"Bearer {token}"}
    return ("POST /users/", "POST", "/users/", auth, new_mailbox, 201)


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


def run(base, target, count, clients=1, warmup=0):
    """``warmup`` requests whose answers are not kept, then ``count`` timed
    ones: from one keep-alive session one after the other (``clients`` 1),
    or from ``clients`` threads, each with its own keep-alive session.
    Returns the outcomes and the seconds of the timed requests."""
    if clients == 1:
        with requests.Session() as session:
            for _ in range(warmup):
                call(session, base, target)
            start = time.perf_counter()
            outcomes = [call(session, base, target) for _ in range(count)]
            return outcomes, time.perf_counter() - start
    local, sessions = threading.local(), []

    def one(_index):
        if not hasattr(local, "session"):
            local.session = requests.Session()
            sessions.append(local.session)
        return call(local.session, base, target)

    pool = ThreadPoolExecutor(clients)
    try:
        list(pool.map(one, range(warmup)))
        start = time.perf_counter()
        outcomes = list(pool.map(one, range(count)))
        return outcomes, time.perf_counter() - start
    finally:
        # after Ctrl-C, the requests not yet started are dropped
        pool.shutdown(cancel_futures=True)
        for session in sessions:
            session.close()


def summarize(outcomes, seconds):
    """Latencies of the successful answers (ms), their rate, the failures."""
    ok = [elapsed * 1000 for elapsed, error in outcomes if error is None]
    cuts = statistics.quantiles(ok, n=100, method="inclusive") if len(ok) > 1 else None
    return {
        "seconds": seconds,
        "p50": cuts[49] if cuts else None,
        "p95": cuts[94] if cuts else None,
        "rps": len(ok) / seconds,
        "ok": len(ok),
        "errors": Counter(error for _elapsed, error in outcomes if error),
    }


def log_since(path, offset):
    """What a server wrote to its log ``path`` after ``offset``."""
    with path.open(errors="replace") as log:
        log.seek(offset)
        return log.read()


def measure(base, target, count, clients, warmup, logs):
    """One row: ``run`` and ``summarize``, with what the servers wrote to
    their ``logs`` ({name: path}) meanwhile: ``retries`` {name: replays
    after a PostgreSQL concurrency failure}, ``served`` {name: ms of each
    request like ``target``} and their ``log_errors``."""
    offsets = {name: path.stat().st_size for name, path in logs.items()}
    outcomes, seconds = run(base, target, count, clients, warmup)
    row = {**summarize(outcomes, seconds), "retries": {}, "log_errors": []}
    row["served"], row["outcomes"] = {}, outcomes
    for name, path in logs.items():
        text = log_since(path, offsets[name])
        row["retries"][name] = text.count("tries left")
        row["log_errors"] += [line for line in text.splitlines() if " ERROR " in line]
        row["served"][name] = served_ms(text, target[1], target[2])
    return row


def merge(rows):
    """One row from the rows of several slices of the same measurement."""
    outcomes = [outcome for row in rows for outcome in row["outcomes"]]
    merged = summarize(outcomes, sum(row["seconds"] for row in rows))
    merged["outcomes"] = outcomes
    merged["log_errors"] = [line for row in rows for line in row["log_errors"]]
    for key in ("retries", "served"):
        merged[key] = {
            name: sum((row[key][name] for row in rows), type(rows[0][key][name])())
            for name in rows[0][key]
        }
    return merged


def served_ms(text, method, path):
    """The milliseconds the server spent on each ``method path`` request
    it logged in ``text`` (warm-up ones too), by Odoo's own count."""
    return [
        (float(queries) + float(rest)) * 1000
        for verb, where, queries, rest in ACCESS_LINE.findall(text)
        if verb == method and where == path
    ]


def print_failures(results, label, logs):
    """The most frequent failed answers of each row (``label(key)`` names
    the row), then the first ERROR lines the servers logged during them."""
    for key, row in results.items():
        if row["errors"]:
            print(f"\nErrors, {label(key)}:")
            for error, count in row["errors"].most_common(5):
                print(f"  {count} x {error}")
    log_errors = [line for row in results.values() for line in row["log_errors"]]
    if log_errors:
        print(f"\n{len(log_errors)} ERROR line(s) in {logs}, first ones:")
        print("\n".join(log_errors[:5]))


def fmt(value, spec=".1f"):
    return "-" if value is None else format(value, spec)


def ratio(numerator, denominator):
    return numerator / denominator if numerator and denominator else None
