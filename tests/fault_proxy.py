"""A loopback HTTP proxy that injects faults between two servers.

One request per connection (the request is forwarded with ``Connection:
close``). For each request, with probability ``rate`` (drawn from a seeded
``random.Random``), one fault among:

* ``502``: answers 502 Bad Gateway without forwarding;
* ``timeout``: holds the connection ``hold`` seconds without forwarding,
  then closes it (longer than the client's timeout);
* ``reset``: closes the connection with a TCP reset, without forwarding;
* ``lost``: forwards to the target, reads its whole answer (the target
  applied the request), then resets the client's connection;
* ``refuse`` (only when asked for, in ``faults``, and never for a GET or
  a DELETE): answers 409 with ``{"detail": "Refused by the fault proxy"}``
  without forwarding, as an upstream refusing a change would. A delete
  sent again after an earlier try landed meets "not found" upstream,
  never a refusal: refusing it here would say it had not landed.

``counts`` tells how many requests saw each outcome (``ok`` included);
``forwarded`` lists ``[method, path, body, status]`` of every request the
target received, in order; ``status`` is that of the target's answer (None
until it has answered).
"""

import random
import socket
import socketserver
import struct
import threading
import time

FAULTS = ("502", "timeout", "reset", "lost")
REFUSAL = b'{"detail": "Refused by the fault proxy"}'


def _reset(sock):
    """Close ``sock`` with a TCP RST (SO_LINGER 0)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()


def _read_request(sock):
    """The raw head and body of one HTTP request, or None."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head, body


def _close_head(head):
    """``head`` with ``Connection: close`` instead of any keep-alive."""
    lines = [
        line
        for line in head.split(b"\r\n")
        if line.split(b":")[0].strip().lower() not in (b"connection", b"keep-alive")
    ]
    return b"\r\n".join([*lines, b"Connection: close"])


class FaultProxy:
    def __init__(
        self, target_host, target_port, rate=0.2, seed=1, hold=3.0, faults=FAULTS
    ):
        self.target = (target_host, target_port)
        self.rate = rate
        self.hold = hold
        self.faults = tuple(faults)
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.counts = dict.fromkeys(("ok", *self.faults), 0)
        self.forwarded = []
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                proxy._handle(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def _choose(self, head):
        faults = self.faults
        if head.startswith((b"GET ", b"DELETE ")):
            faults = tuple(f for f in faults if f != "refuse")
        with self.lock:
            fault = "ok"
            if faults and self.random.random() < self.rate:
                fault = self.random.choice(faults)
            self.counts[fault] += 1
            return fault

    def _forward(self, head, body):
        method, path = head.split(b" ")[:2]
        entry = [method.decode(), path.decode(), body, None]
        with self.lock:
            self.forwarded.append(entry)
        with socket.create_connection(self.target, timeout=60) as upstream:
            upstream.sendall(_close_head(head) + b"\r\n\r\n" + body)
            answer = b""
            while True:
                chunk = upstream.recv(65536)
                if not chunk:
                    status_line = answer.split(b"\r\n", 1)[0].split()
                    if len(status_line) > 1 and status_line[1].isdigit():
                        entry[3] = int(status_line[1])
                    return answer
                answer += chunk

    def _handle(self, client):
        client.settimeout(60)
        request = _read_request(client)
        if request is None:
            client.close()
            return
        self._answer(client, *request)

    def _answer(self, client, head, body):
        """Answer one request with the fault drawn for it (``ok``: what the
        target answered)."""
        request = head, body
        fault = self._choose(head)
        if fault == "502":
            client.sendall(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\n"
                b"Content-Length: 11\r\nConnection: close\r\n\r\nBad Gateway"
            )
            client.close()
        elif fault == "refuse":
            client.sendall(
                b"HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                % (len(REFUSAL), REFUSAL)
            )
            client.close()
        elif fault == "timeout":
            time.sleep(self.hold)
            client.close()
        elif fault == "reset":
            _reset(client)
        elif fault == "lost":
            self._forward(*request)
            _reset(client)
        else:
            client.sendall(self._forward(*request))
            client.close()
