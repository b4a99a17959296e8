"""A real authoritative DNS server (Knot, from Debian) on a loopback port,
serving zones that the tests write."""

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

SOA = "@ SOA ns admin {serial} 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1\n"


def free_udp_tcp_port():
    """A loopback port free for both UDP and TCP."""
    for _attempt in range(50):
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port")


class Blackhole:
    """A UDP socket that reads queries and never answers: a nameserver
    that does not respond."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self._running = True
        self._thread = threading.Thread(target=self._swallow, daemon=True)
        self._thread.start()

    def _swallow(self):
        while self._running:
            try:
                self.sock.recvfrom(4096)
            except OSError:
                continue

    def close(self):
        self._running = False
        self._thread.join(timeout=2)
        self.sock.close()


class KnotServer:
    """``zones`` maps a zone name to its records (zone-file lines relative
    to the zone). Zones listed in ``silent`` are forwarded to a server that
    never answers: Knot gives up after ``proxy_timeout_ms`` and answers
    SERVFAIL (kept short: each such query holds one of Knot's workers).
    ``blackhole.port`` is that silent server, for tests that want a
    nameserver which times out."""

    def __init__(self, workdir, zones, silent=(), proxy_timeout_ms=200):
        self.dir = Path(workdir)
        self.port = free_udp_tcp_port()
        self.zones = dict(zones)
        self.silent = tuple(silent)
        self.serial = 1
        self.blackhole = Blackhole()
        (self.dir / "zones").mkdir(parents=True, exist_ok=True)
        self._write_zones()
        self._write_config(proxy_timeout_ms)
        knotd = shutil.which("knotd") or "/usr/sbin/knotd"
        self.log = (self.dir / "knotd.log").open("w")
        self.process = subprocess.Popen(
            [knotd, "-c", str(self.dir / "knot.conf")],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _write_zones(self):
        for zone, records in {**self.zones, **{z: "" for z in self.silent}}.items():
            text = f"$ORIGIN {zone}.\n$TTL 60\n" + SOA.format(serial=self.serial)
            (self.dir / "zones" / f"{zone}.zone").write_text(text + records)

    def _write_config(self, proxy_timeout_ms):
        zones = "".join(f"  - domain: {zone}\n" for zone in self.zones)
        zones += "".join(
            f"  - domain: {zone}\n    module: mod-dnsproxy/silent\n"
            for zone in self.silent
        )
        (self.dir / "knot.conf").write_text(
            f"""server:
    rundir: "{self.dir}"
    listen: 127.0.0.1@{self.port}
    udp-workers: 16
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{self.dir}/db"
log:
  - target: stderr
    any: warning
remote:
  - id: silent
    address: 127.0.0.1@{self.blackhole.port}
mod-dnsproxy:
  - id: silent
    remote: silent
    timeout: {proxy_timeout_ms}
    fallback: off
template:
  - id: default
    storage: "{self.dir}/zones"
    file: "%s.zone"
zone:
{zones}"""
        )

    def _wait_ready(self, timeout=15):
        self._wait_serving(next(iter(self.zones)), timeout=timeout)

    def _wait_serving(self, zone, serial=None, timeout=15):
        """Until Knot answers the SOA of ``zone`` (with ``serial``, when
        given: a reload is done once the new serial is served)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.dir / "knotd.log").read_text())
            result = subprocess.run(
                [
                    "kdig",
                    "@127.0.0.1",
                    "-p",
                    str(self.port),
                    "SOA",
                    zone,
                    "+short",
                    "+timeout=1",
                    "+retry=0",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            # "ns.zone. admin.zone. SERIAL 3600 600 86400 60"
            fields = result.stdout.split()
            if fields and (serial is None or fields[2:3] == [str(serial)]):
                return
            time.sleep(0.1)
        raise RuntimeError(f"knotd did not serve {zone} (serial {serial})")

    def update(self, zone, records):
        """Replace a zone's records and make Knot serve them."""
        self.zones[zone] = records
        self.serial += 1
        self._write_zones()
        subprocess.run(
            ["knotc", "-c", str(self.dir / "knot.conf"), "zone-reload", zone],
            check=True,
            capture_output=True,
        )
        self._wait_serving(zone, self.serial)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        self.blackhole.close()
