"""How much the DNS checker's concurrent mode gains: 1,000 domains served by
a real Knot server on loopback, checked one after the other and then with
the checker's thread pool, in the same run. Prints both times and the ratio,
once straight to Knot (loopback: no network latency at all) and once through
a relay that delays each answer by ``--latency-ms``, as a resolver across a
network does.

    .venv/bin/python bench/dns.py [--domains 1000] [--workers 16] [--latency-ms 20]
"""

import argparse
import asyncio
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# this file's folder comes first on sys.path, where its name would shadow
# dnspython's ``dns`` package
sys.path[0] = str(REPO / "tests")
sys.path.insert(0, str(REPO / "emboux_mail"))

from dns_server import KnotServer  # noqa: E402
from services import dns_checker  # noqa: E402

ZONE = "bench.example"


def zone_records(count):
    """Every domain publishes the four records, as a healthy customer does."""
    lines = []
    for index in range(count):
        name = f"d{index}"
        lines += [
            f"{name} MX 10 mx1.emboux.test.",
            f'{name} TXT "v=spf1 include:emboux.test ~all"',
            f'emboux._domainkey.{name} TXT "v=DKIM1; k=rsa; p=MIGfMA0GCSqG"',
            f'_dmarc.{name} TXT "v=DMARC1; p=none"',
        ]
    return "\n".join(lines) + "\n"


class DelayRelay:
    """A UDP relay on loopback that forwards each query to ``port`` and
    sends the answer back ``delay`` seconds later, many at a time."""

    def __init__(self, port, delay):
        self.loop = asyncio.new_event_loop()
        self.target = ("127.0.0.1", port)
        self.delay = delay
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        transport, _protocol = self.loop.run_until_complete(
            self.loop.create_datagram_endpoint(
                lambda: _Relay(self), local_addr=("127.0.0.1", 0)
            )
        )
        self.port = transport.get_extra_info("sockname")[1]
        ready.set()
        self.loop.run_forever()

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class _Relay(asyncio.DatagramProtocol):
    def __init__(self, relay):
        self.relay = relay

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        asyncio.ensure_future(self._forward(data, addr))

    async def _forward(self, data, addr):
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as upstream:
            upstream.setblocking(False)
            await loop.sock_sendto(upstream, data, self.relay.target)
            answer = await asyncio.wait_for(loop.sock_recv(upstream, 65535), 5)
        await asyncio.sleep(self.relay.delay)
        self.transport.sendto(answer, addr)


def timed(checker, domains, workers):
    started = time.perf_counter()
    results = checker.check_many(domains, workers=workers)
    elapsed = time.perf_counter() - started
    healthy = sum(result.health == "ok" for result in results)
    return elapsed, healthy


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    domains = [f"d{index}.{ZONE}" for index in range(args.domains)]
    expectations = dns_checker.Expectations(
        mx_hosts=("mx1.emboux.test",), spf_include="include:emboux.test"
    )
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        server = KnotServer(workdir, {ZONE: zone_records(args.domains)})
        relay = DelayRelay(server.port, args.latency_ms / 1000)
        try:
            for label, port in (
                ("Knot direct", server.port),
                (f"+{args.latency_ms:g} ms latency", relay.port),
            ):
                settings = dns_checker.ResolverSettings(("127.0.0.1",), port, 2.0, 4.0)
                checker = dns_checker.DnsChecker(expectations, settings)
                timed(checker, domains[:20], 1)  # warm-up
                sequential = timed(checker, domains, 1)
                concurrent = timed(checker, domains, args.workers)
                rows.append((label, sequential, concurrent))
        finally:
            relay.close()
            server.stop()
    print(f"{args.domains} domains, 4 records each, Knot on loopback")
    header = f"{args.workers} workers"
    print(f"{'path':<20} {'sequential':>12} {header:>12} {'speed-up':>9} {'ok':>11}")
    for label, (seq, ok_seq), (con, ok_con) in rows:
        ratio = seq / con
        oks = f"{ok_seq}/{ok_con}"
        print(f"{label:<20} {seq:10.2f} s {con:10.2f} s {ratio:8.2f}x {oks:>11}")


if __name__ == "__main__":
    main()
