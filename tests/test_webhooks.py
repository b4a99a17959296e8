"""Lifecycle webhooks from a real Odoo server to a receiver on loopback that
fails often: every event arrives, signed, exactly once after deduplication
by its id, and a receiver answering 410 is not called again."""

import json
import random
import secrets
import socket
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from api_client import Api
from rpc import OdooRpc
from standardwebhooks import Webhook

TENANT_REF = "hooks_tenant"
EVENTS = 500
FAILURE_RATE = 0.3
TIMEOUT = 1  # the server's webhook timeout in this test, in seconds


class Receiver(ThreadingHTTPServer):
    """Answers each POST as ``plan(path)`` says: 200 (verified and kept),
    500, a reset connection, an answer slower than the sender's timeout,
    or 410."""

    daemon_threads = True

    def __init__(self, plan):
        super().__init__(("127.0.0.1", 0), Handler)
        self.plan = plan
        self.secret = None
        self.received = Counter()  # attempts per webhook-id
        self.kept = []  # verified payloads of the 2xx answers
        self.lock = threading.Lock()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_port}"


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        server = self.server
        body = self.rfile.read(int(self.headers["content-length"]))
        headers = {key.lower(): value for key, value in self.headers.items()}
        with server.lock:
            server.received[headers["webhook-id"]] += 1
        answer = server.plan(self.path)
        if answer == "reset":
            # RST instead of an answer
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            self.close_connection = True
            return
        if answer == "slow":
            time.sleep(TIMEOUT + 0.5)
            answer = 200
        if answer == 200:
            payload = Webhook(server.secret).verify(body, headers)
            with server.lock:
                server.kept.append((headers["webhook-id"], payload))
        try:
            self.send_response(answer)
            self.end_headers()
            self.wfile.write(b"ok" if answer == 200 else b"no")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the sender stopped waiting: a timeout, as planned

    def log_message(self, *args):
        pass


def flaky(seed=4711):
    """30% of attempts fail: half with 500, the rest reset or too slow."""
    chance = random.Random(seed)  # noqa: S311 (a test's dice)
    lock = threading.Lock()

    def plan(_path):
        with lock:
            roll = chance.random()
        if roll >= FAILURE_RATE:
            return 200
        if roll < FAILURE_RATE * 0.5:
            return 500
        return "reset" if roll < FAILURE_RATE * 0.8 else "slow"

    return plan


@pytest.fixture(scope="module")
def rpc(demo_server):
    client = OdooRpc(demo_server.url, demo_server.db)
    settings = {
        "emboux_mail.webhook_allow_private": "1",
        "emboux_mail.webhook_timeout": str(TIMEOUT),
        "emboux_mail.webhook_retry_schedule": ",".join(["0.5"] * 12),
    }
    for name, value in settings.items():
        client.call("ir.config_parameter", "set_param", name, value)
    yield client
    client.call(
        "ir.config_parameter", "set_param", "emboux_mail.webhook_allow_private", "0"
    )


@pytest.fixture(scope="module")
def tenant(demo_server, master):
    token = "emb_hooks_" + secrets.token_urlsafe(16)
    body = {
        "token": token,
        "partner_ref": TENANT_REF,
        "mailboxes_per_domain": 0,
        "aliases_per_mailbox": 0,
    }
    master.ok("POST", "/api-keys/", body, 201)
    master.ok(
        "POST", "/domains/", {"name": "hooks.example", "partner_ref": TENANT_REF}, 201
    )
    api = Api(demo_server.url, token)
    api.ok(
        "POST",
        "/users/",
        {
            "domain_name": "hooks.example",
            "email": "team@hooks.example",
            "password": "Hooks-pass-4711",
        },
        201,
    )
    return api


def _endpoint(rpc, url, topics):
    [partner] = rpc.call(
        "res.partner", "search", [("emboux_partner_ref", "=", TENANT_REF)]
    )
    topic_ids = rpc.call(
        "emboux.mail.webhook.topic", "search", [("code", "in", topics)]
    )
    webhook_id = rpc.call(
        "emboux.mail.webhook",
        "create",
        {"url": url, "partner_id": partner, "topic_ids": [(6, 0, topic_ids)]},
    )
    [secret] = rpc.call("emboux.mail.webhook", "read", [webhook_id], ["secret"])
    return webhook_id, secret["secret"]


def _serve(receiver):
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    return receiver


def _wait(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(what)


def wait_delivered(rpc, receiver, webhook_id, event_ids, timeout=600):
    """Until ``receiver`` kept every one of ``event_ids`` and the sender
    says every delivery of ``webhook_id`` is done: a receiver may keep an
    event whose answer came too late, which the sender then retries."""
    _wait(
        lambda: {key for key, _payload in receiver.kept} >= event_ids,
        timeout,
        f"{len({k for k, _p in receiver.kept})} of {len(event_ids)} events arrived",
    )
    _wait(
        lambda: not rpc.call(
            "emboux.mail.webhook.delivery",
            "search_count",
            [("webhook_id", "=", webhook_id), ("state", "!=", "delivered")],
        ),
        300,
        "deliveries still pending",
    )


def test_every_event_once_through_failures(rpc, tenant):
    receiver = _serve(Receiver(flaky()))
    webhook_id, receiver.secret = _endpoint(rpc, receiver.url, ["alias.created"])
    try:
        sources = [f"a{number}@hooks.example" for number in range(EVENTS)]
        for source in sources:
            tenant.ok(
                "POST",
                "/aliases/",
                {
                    "domain_name": "hooks.example",
                    "source": source,
                    "destination": "team@hooks.example",
                },
                201,
            )
        event_ids = set(
            row["message_id"]
            for row in rpc.call(
                "emboux.mail.webhook.event",
                "search_read",
                [
                    ("topic", "=", "alias.created"),
                    ("partner_id.emboux_partner_ref", "=", TENANT_REF),
                ],
                ["message_id"],
            )
        )
        assert len(event_ids) == EVENTS
        wait_delivered(rpc, receiver, webhook_id, event_ids)
        kept = {key: payload for key, payload in receiver.kept}
        assert set(kept) == event_ids  # nothing else, nothing missing
        assert {p["data"]["object"]["source"] for p in kept.values()} == set(sources)
        assert all(p["type"] == "alias.created" for p in kept.values())
        assert all(p["data"]["partner_ref"] == TENANT_REF for p in kept.values())
        retried = [key for key, count in receiver.received.items() if count > 1]
        assert retried, "30% failures and no retry"
        # the delivery log shows the failed attempts and what they got
        attempts = rpc.call(
            "emboux.mail.webhook.attempt",
            "search_read",
            [("webhook_id", "=", webhook_id)],
            ["status", "succeeded", "latency_ms", "answer"],
        )
        failed = [a for a in attempts if not a["succeeded"]]
        assert {a["status"] for a in failed} >= {500, 0}
        assert any("Timeout" in (a["answer"] or "") for a in failed)
        assert sum(a["succeeded"] for a in attempts) == EVENTS
        print(
            f"webhooks: {EVENTS} events, {sum(receiver.received.values())} attempts, "
            f"{len(failed)} failed, {len(retried)} events retried, "
            f"{len(kept)} kept after deduplication"
        )
    finally:
        receiver.shutdown()
        rpc.call("emboux.mail.webhook", "unlink", [webhook_id])


def test_gone_disables_the_endpoint(rpc, tenant):
    receiver = _serve(Receiver(lambda _path: 410))
    webhook_id, receiver.secret = _endpoint(rpc, receiver.url, ["mailbox.created"])
    try:
        for number in range(3):
            tenant.ok(
                "POST",
                "/users/",
                {
                    "domain_name": "hooks.example",
                    "email": f"gone{number}@hooks.example",
                    "password": "Hooks-pass-4711",
                },
                201,
            )

        def disabled():
            [hook] = rpc.call(
                "emboux.mail.webhook",
                "read",
                [webhook_id],
                ["active", "disabled_reason"],
                context={"active_test": False},
            )
            return not hook["active"] and "410" in (hook["disabled_reason"] or "")

        _wait(disabled, 120, "a 410 did not disable the endpoint")
        time.sleep(3)  # what would still come
        assert sum(receiver.received.values()) == 1
    finally:
        receiver.shutdown()
        rpc.call("emboux.mail.webhook", "unlink", [webhook_id])


def test_payload_never_carries_the_password(rpc, tenant):
    receiver = _serve(Receiver(lambda _path: 200))
    webhook_id, receiver.secret = _endpoint(
        rpc, receiver.url, ["mailbox.password_changed"]
    )
    try:
        password = "Brand-new-pass-" + secrets.token_hex(6)
        tenant.ok("PUT", "/users/team@hooks.example", {"password": password})
        _wait(lambda: receiver.kept, 120, "no password_changed event")
        [(_key, payload)] = receiver.kept
        assert payload["data"]["object"]["email"] == "team@hooks.example"
        assert password not in json.dumps(payload)
    finally:
        receiver.shutdown()
        rpc.call("emboux.mail.webhook", "unlink", [webhook_id])
