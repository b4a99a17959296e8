"""The EmBoux API client (``emboux_mail/services/emboux_client.py``) against
real HTTP servers: a ``./setup/run`` server serving the API (every method
and the typed errors) and a scripted stub on loopback (retries, timeouts,
backoff). Nothing of ``requests`` is mocked."""

import datetime
import json
import re
import secrets
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dns_zones
import pytest
from conftest import REPO
from emboux_setup.processes import free_port
from rpc import OdooRpc

sys.path.insert(0, str(REPO / "emboux_mail"))
from services import emboux_client as ec  # noqa: E402

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")
# every route of the contract, each called by one client method
ROUTES = {
    ("/domains/", "post"),
    ("/domains/", "get"),
    ("/domains/{domain_name}", "delete"),
    ("/domains/{domain_name}/register-subdomain", "post"),
    ("/domains/{domain_name}/verify", "post"),
    ("/domains/{domain_name}/parent", "put"),
    ("/domains/{domain_name}/dns-check", "get"),
    ("/domains/{domain_name}/owner", "put"),
    ("/domains/{domain_name}/suspend", "put"),
    ("/domains/{domain_name}/activate", "put"),
    ("/domains/{domain_name}/outbound", "get"),
    ("/domains/{domain_name}/outbound", "put"),
    ("/domains/{domain_name}/outbound/increment", "post"),
    ("/domains/{domain_name}/transfer", "get"),
    ("/domains/{domain_name}/transfer", "put"),
    ("/domains/{domain_name}/retention", "get"),
    ("/domains/{domain_name}/retention", "put"),
    ("/users/", "post"),
    ("/users/", "get"),
    ("/users/{email}", "put"),
    ("/users/{email}", "delete"),
    ("/users/{email}/quota", "get"),
    ("/users/{email}/quota", "put"),
    ("/aliases/", "post"),
    ("/aliases/", "get"),
    ("/aliases/{source}", "delete"),
    ("/api-keys/", "post"),
    ("/api-keys/{token}", "put"),
    ("/api-keys/{token}", "delete"),
    ("/api-keys/{token}/usage", "get"),
    ("/webhooks/", "post"),
    ("/webhooks/", "get"),
    ("/webhooks/{webhook_id}", "get"),
    ("/webhooks/{webhook_id}", "put"),
    ("/webhooks/{webhook_id}", "delete"),
}


def _refused(call, error_class, status, detail):
    """The error ``call()`` raises, checked for class, status and detail."""
    with pytest.raises(error_class) as caught:
        call()
    assert (caught.value.status, caught.value.detail) == (status, detail)
    return caught.value


# -- against a real server ---------------------------------------------------


@pytest.fixture(scope="module")
def api(run_server, dns_server):
    """A server on database ``emboux_e2e_client`` whose dns-check asks Knot,
    with ``api.master`` (a client with the master token) and
    ``api.tenant(ref, **quotas)`` (a client with a new key of that tenant)."""
    master_token = "emb_master_" + secrets.token_urlsafe(24)
    server = run_server("client", env={"EMBOUX_API_KEY": master_token})
    rpc = OdooRpc(server.url, server.db)
    dns_zones.use_test_zones(rpc, dns_server)
    clients = [ec.EmbouxClient(server.url, master_token)]

    def tenant(ref, **quotas):
        token = f"emb_{ref}_{secrets.token_urlsafe(16)}"
        key = clients[0].create_api_key(token, ref, **quotas)
        assert (key["token"], key["partner_ref"]) == (token, ref)
        clients.append(ec.EmbouxClient(server.url, token))
        return clients[-1]

    server.rpc, server.master, server.tenant = rpc, clients[0], tenant
    yield server
    for client in clients:
        client.close()


def test_domains_create_list_delete(api):
    alpha = api.tenant("client_alpha", domains_allowed=2)
    beta = api.tenant("client_beta", domains_allowed=0)
    first = alpha.create_domain("One.Client-Alpha.example")
    assert first["name"] == "one.client-alpha.example"
    assert isinstance(first["id"], int) and STAMP.match(first["created_at"])
    # a customer's partner_ref is ignored: its own tenant owns the domain
    alpha.create_domain("two.client-alpha.example", partner_ref="client_beta")
    refused = _refused(
        lambda: alpha.create_domain("three.client-alpha.example"),
        ec.EmbouxForbidden,
        403,
        "Domain quota exceeded: 2/2",
    )
    assert refused.quota_exceeded
    assert refused.body == {"detail": "Domain quota exceeded: 2/2"}
    _refused(
        lambda: beta.create_domain("ONE.client-alpha.example"),
        ec.EmbouxBadRequest,
        400,
        "Domain already exists",
    )
    # the master token assigns a domain to a tenant
    api.master.create_domain("master.client-beta.example", partner_ref="client_beta")

    page = alpha.list_domains()
    assert [d["name"] for d in page.items] == [
        "two.client-alpha.example",
        "one.client-alpha.example",
    ]
    assert page.total == 2
    items, total = alpha.list_domains(limit=1, offset=1)
    # the list adds each domain's state (a customer's waits for its proof)
    # and its place under a parent
    state = {
        "verified": False,
        "suspended": False,
        "suspension_reason": None,
        "parent_domain": None,
        "is_wildcard": False,
    }
    assert (items, total) == ([{**first, **state}], 2)
    assert [d["name"] for d in beta.list_domains().items] == [
        "master.client-beta.example"
    ]
    everything = api.master.list_domains(limit=2)
    assert len(everything.items) == 2 and everything.total >= 3

    assert alpha.delete_domain("two.client-alpha.example") is None
    assert alpha.list_domains().total == 1
    _refused(
        lambda: alpha.delete_domain("two.client-alpha.example"),
        ec.EmbouxNotFound,
        404,
        "Domain not found",
    )
    # another tenant's domain does not exist for alpha
    _refused(
        lambda: alpha.suspend("master.client-beta.example"),
        ec.EmbouxNotFound,
        404,
        "Domain not found",
    )


def test_owner_suspend_activate(api):
    old = api.tenant("client_old", domains_allowed=0)
    api.tenant("client_new", domains_allowed=0)
    name = "moved.client-old.example"
    old.create_domain(name)
    forbidden = _refused(
        lambda: old.set_owner(name, "client_new"),
        ec.EmbouxForbidden,
        403,
        "Master token required",
    )
    assert not forbidden.quota_exceeded
    _refused(
        lambda: api.master.set_owner(name, "client_nobody"),
        ec.EmbouxBadRequest,
        400,
        "No active api_key for partner_ref=client_nobody",
    )
    assert api.master.set_owner(name, "client_new") == {
        "name": name,
        "partner_ref": "client_new",
        "previous_partner_ref": "client_old",
    }
    assert old.list_domains().total == 0
    assert api.master.set_owner(name, None) == {
        "name": name,
        "partner_ref": None,
        "previous_partner_ref": "client_new",
    }

    assert api.master.suspend(name) == {
        "name": name,
        "suspended": True,
        "message": "Domain suspended",
    }
    assert api.master.activate(name) == {
        "name": name,
        "suspended": False,
        "message": "Domain activated",
    }
    _refused(
        lambda: api.master.activate("absent.client-old.example"),
        ec.EmbouxNotFound,
        404,
        "Domain not found",
    )


def test_parent_and_register_subdomain(api):
    shop = api.tenant("client_wild", domains_allowed=0)
    parent = shop.create_domain("client-wild.example")
    _refused(
        lambda: shop.set_parent("client-wild.example", is_wildcard=True),
        ec.EmbouxForbidden,
        403,
        "Master token required",
    )
    assert api.master.set_parent("client-wild.example", is_wildcard=True) == {
        "name": "client-wild.example",
        "parent_domain": None,
        "is_wildcard": True,
    }
    shop.create_domain("shop.client-wild.example")
    _refused(
        lambda: shop.register_subdomain("shop.client-wild.example"),
        ec.EmbouxBadRequest,
        400,
        "Parent domain is not a verified wildcard",
    )
    # the provider's verification has no API route: the parent is marked
    # verified the way the provider sync would
    api.rpc.call(
        "emboux.mail.domain",
        "write",
        [parent["id"]],
        {"verified": True, "provider": "mailgun"},
    )
    assert shop.register_subdomain("shop.client-wild.example") == {
        "name": "shop.client-wild.example",
        "verification_token": "",
        "dkim_tokens": [],
        "verified": True,
        "dns_records": [],
        "provider": "mailgun",
    }
    _refused(
        lambda: shop.register_subdomain("client-wild.example"),
        ec.EmbouxBadRequest,
        400,
        "Name is not a subdomain",
    )
    detached = api.master.set_parent("shop.client-wild.example", parent_domain=None)
    assert detached["parent_domain"] is None and detached["is_wildcard"] is False
    attached = api.master.set_parent(
        "shop.client-wild.example", parent_domain="Client-Wild.example"
    )
    assert attached["parent_domain"] == "client-wild.example"
    _refused(
        lambda: api.master.set_parent(
            "shop.client-wild.example", parent_domain="absent.example"
        ),
        ec.EmbouxNotFound,
        404,
        "Parent domain not found",
    )


def test_dns_check(api, dns_server):
    checker = api.tenant("client_dns", domains_allowed=0)
    good, nx = f"good.{dns_zones.ZONE}", f"nx.{dns_zones.ZONE}"
    checker.create_domain(good)
    checker.create_domain(nx)
    # the zone publishes some key, not the one the domain signs with
    answer = checker.dns_check(good)
    assert answer["all_ok"] is False
    [dkim] = [r for r in answer["records"] if "._domainkey." in r["name"]]
    assert dkim["status"] == "incorrect" and "p=" in dkim["expected"]
    # its owner publishes the record the check names
    dns_server.update(
        dns_zones.ZONE, dns_zones.zone_records({"good": dkim["expected"]})
    )
    try:
        answer = checker.dns_check(good)
    finally:
        dns_server.update(dns_zones.ZONE, dns_zones.ZONE_RECORDS)
    assert answer["name"] == good and answer["all_ok"] is True
    assert [r["record_type"] for r in answer["records"]] == ["MX", "TXT", "TXT", "TXT"]
    assert {r["status"] for r in answer["records"]} == {"ok"}
    answer = checker.dns_check(nx)
    assert answer["all_ok"] is False
    assert {r["status"] for r in answer["records"]} == {"missing"}
    _refused(
        lambda: checker.dns_check(f"absent.{dns_zones.ZONE}"),
        ec.EmbouxNotFound,
        404,
        "Domain not found",
    )


def test_outbound_transfer_and_retention(api):
    owner = api.tenant("client_out", domains_allowed=0)
    # placed by the master: verified, so it may send
    api.master.create_domain("client-out.example", "client_out")
    api.master.set_outbound("client-out.example", {"outbound_daily_limit": 1})
    api.master.set_transfer("client-out.example", 5)
    first = api.master.count_outbound("client-out.example", recipients=3, size=2048)
    second = api.master.count_outbound("client-out.example")
    assert (first["allowed"], first["outbound_sent_today"]) == (True, 1)
    assert second["allowed"] is False
    assert second["reason"] == (
        "Daily sending limit reached for client-out.example (1 message)"
    )
    figures = owner.get_outbound("client-out.example")
    assert (figures["outbound_sent_today"], figures["outbound_daily_limit"]) == (1, 1)
    assert owner.get_transfer("client-out.example")["transfer_monthly_mb"] == 5
    _refused(
        lambda: owner.set_transfer("client-out.example", 50),
        ec.EmbouxForbidden,
        403,
        "Master token required",
    )
    # how long mail is kept: the customer within its plan (no ceiling here)
    assert owner.get_retention("client-out.example")["retention_days"] == 0
    assert owner.set_retention("client-out.example", 30) == {
        "name": "client-out.example",
        "retention_days": 30,
    }
    assert api.master.get_retention("client-out.example")["retention_days"] == 30


def test_verify_domain(api):
    owner = api.tenant("client_proof", domains_allowed=0)
    owner.create_domain("client-proof.example")
    answer = owner.verify_domain("client-proof.example")
    token = answer["verification_token"]
    assert answer["verified"] is False and token
    assert answer["dns_records"] == [
        {
            "record_type": "TXT",
            "name": "client-proof.example",
            "value": f"emboux-verification={token}",
        }
    ]
    # a master places a name for a tenant that must prove it, with its token
    api.master.create_domain(
        "placed-proof.example",
        partner_ref="client_proof",
        verified=False,
        verification_token="token-of-the-placer-0001",
    )
    answer = owner.verify_domain("placed-proof.example")
    assert (answer["verified"], answer["verification_token"]) == (
        False,
        "token-of-the-placer-0001",
    )
    api.master.create_domain("vouched-proof.example", partner_ref="client_proof")
    assert owner.verify_domain("vouched-proof.example")["verified"] is True
    _refused(
        lambda: owner.verify_domain("nobody-proof.example"),
        ec.EmbouxNotFound,
        404,
        "Domain not found",
    )


def test_mailboxes(api):
    owner = api.tenant("client_box", domains_allowed=0, mailboxes_per_domain=3)
    domain = owner.create_domain("client-box.example")
    ann = owner.create_mailbox(
        "client-box.example", "Ann@Client-Box.example", "Secret-pw-01"
    )
    assert ann["email"] == "ann@client-box.example"
    assert ann["domain_id"] == domain["id"] and STAMP.match(ann["created_at"])
    _refused(
        lambda: owner.create_mailbox(
            "client-box.example", "ann@client-box.example", "x"
        ),
        ec.EmbouxBadRequest,
        400,
        "Email already exists",
    )
    _refused(
        lambda: owner.create_mailbox(
            "client-box.example", "ann@elsewhere.example", "x"
        ),
        ec.EmbouxBadRequest,
        400,
        "Email does not belong to domain",
    )
    _refused(
        lambda: owner.create_mailbox("absent-box.example", "a@absent-box.example", "x"),
        ec.EmbouxNotFound,
        404,
        "Domain not found",
    )
    invalid = pytest.raises(ec.EmbouxValidation, owner.create_mailbox, "", "bad", "")
    assert invalid.value.status == 422
    assert {tuple(e["loc"]) for e in invalid.value.detail} >= {
        ("body", "domain_name"),
        ("body", "password"),
    }
    # "+" must survive the path: the client quotes it
    tagged = owner.create_mailbox(
        "client-box.example", "a+b@client-box.example", "Secret-pw-02"
    )
    owner.create_mailbox("client-box.example", "bob@client-box.example", "Secret-pw-03")
    full = _refused(
        lambda: owner.create_mailbox(
            "client-box.example", "cy@client-box.example", "x"
        ),
        ec.EmbouxForbidden,
        403,
        "Mailbox quota exceeded for this domain",
    )
    assert full.quota_exceeded

    page = owner.list_mailboxes(domain_id=domain["id"])
    assert page.total == 3 and page.items[-1] == ann
    assert owner.list_mailboxes(domain_id=domain["id"], limit=1, offset=1) == (
        [tagged],
        3,
    )
    assert owner.list_mailboxes(domain_id=domain["id"] + 10_000) == ([], 0)

    assert owner.set_password(tagged["email"], "New-secret-04") == {
        "message": "Contraseña actualizada correctamente"
    }
    assert owner.get_quota(tagged["email"])["email"] == "a+b@client-box.example"
    assert owner.set_quota(tagged["email"], 4096) == {
        "email": "a+b@client-box.example",
        "quota_mb": 4096,
        "used_mb": 0.0,
    }
    assert owner.get_quota(tagged["email"])["quota_mb"] == 4096
    negative = pytest.raises(ec.EmbouxValidation, owner.set_quota, ann["email"], -1)
    assert [e["loc"] for e in negative.value.detail] == [["body", "quota_mb"]]

    assert owner.delete_mailbox(tagged["email"]) is None
    for call in (owner.get_quota, owner.delete_mailbox):
        _refused(
            lambda call=call: call(tagged["email"]),
            ec.EmbouxNotFound,
            404,
            "Mailbox not found",
        )
    _refused(
        lambda: owner.set_password("nobody@client-box.example", "x"),
        ec.EmbouxNotFound,
        404,
        "Mailbox not found",
    )


def test_aliases(api):
    owner = api.tenant("client_alias", domains_allowed=0, aliases_per_mailbox=1)
    domain = owner.create_domain("client-alias.example")
    owner.create_mailbox(
        "client-alias.example", "ann@client-alias.example", "Secret-pw-05"
    )
    catch_all = owner.create_alias(
        "client-alias.example", "@client-alias.example", "ann@client-alias.example"
    )
    assert catch_all["source"] == "@client-alias.example"
    assert catch_all["destination"] == "ann@client-alias.example"
    assert catch_all["domain_id"] == domain["id"]
    over = _refused(
        lambda: owner.create_alias(
            "client-alias.example",
            "info@client-alias.example",
            "ann@client-alias.example",
        ),
        ec.EmbouxForbidden,
        403,
        "Alias quota exceeded: 1/1",
    )
    assert over.quota_exceeded
    _refused(
        lambda: owner.create_alias(
            "client-alias.example", "@client-alias.example", "x@elsewhere.example"
        ),
        ec.EmbouxBadRequest,
        400,
        "Alias source already exists",
    )
    info = owner.create_alias(
        "client-alias.example", "info@client-alias.example", "x@elsewhere.example"
    )
    assert owner.list_aliases(domain_id=domain["id"]) == ([info, catch_all], 2)
    assert owner.list_aliases(limit=1) == ([info], 2)

    # a source starting with "@" addresses the catch-all
    assert owner.delete_alias("@client-alias.example") is None
    assert owner.list_aliases() == ([info], 1)
    _refused(
        lambda: owner.delete_alias("@client-alias.example"),
        ec.EmbouxNotFound,
        404,
        "Alias not found",
    )


def test_api_keys(api):
    token = "emb_client_keys_" + secrets.token_urlsafe(16)
    key = api.master.create_api_key(
        token,
        "client_keys",
        domains_allowed=3,
        mailboxes_per_domain=4,
        aliases_per_mailbox=5,
        active=True,
        expires_at=datetime.datetime(2099, 12, 31, 23, 59, 59),
    )
    assert {k: v for k, v in key.items() if k not in ("id", "created_at")} == {
        "token": token,
        "partner_ref": "client_keys",
        "domains_allowed": 3,
        "domains_used": 0,
        "mailboxes_per_domain": 4,
        "aliases_per_mailbox": 5,
        "active": True,
        "expires_at": "2099-12-31T23:59:59",
        "last_used_at": None,
    }
    _refused(
        lambda: api.master.create_api_key(token, "client_keys"),
        ec.EmbouxBadRequest,
        400,
        "API key already exists",
    )
    short = pytest.raises(ec.EmbouxValidation, api.master.create_api_key, "short", "x")
    assert [e["loc"] for e in short.value.detail] == [["body", "token"]]

    with ec.EmbouxClient(api.url, token) as customer:
        customer.create_domain("client-keys.example")
        assert customer.list_domains().total == 1
        _refused(
            lambda: customer.api_key_usage(token),
            ec.EmbouxForbidden,
            403,
            "Master token required",
        )
        usage = api.master.api_key_usage(token)
        assert usage["token"] == token and usage["since"] is None
        # (whether the refused call counts is not in the contract: not checked)
        assert usage["by_route"]["POST /domains/"] == 1
        assert usage["by_route"]["GET /domains/"] == 1
        assert usage["requests"] == sum(usage["by_route"].values())
        assert usage["domains_used"] == 1
        assert STAMP.match(usage["last_used_at"])
        later = api.master.api_key_usage(token, since=datetime.datetime(2099, 1, 1))
        assert (later["since"], later["requests"], later["by_route"]) == (
            "2099-01-01T00:00:00",
            0,
            {},
        )

        revoked = api.master.update_api_key(token, active=False, expires_at=None)
        assert (revoked["active"], revoked["expires_at"]) == (False, None)
        assert revoked["domains_allowed"] == 3
        denied = _refused(
            customer.list_domains, ec.EmbouxForbidden, 403, "API key is deactivated"
        )
        assert not denied.quota_exceeded
        raised = api.master.update_api_key(token, domains_allowed=7)
        assert (raised["domains_allowed"], raised["active"]) == (7, False)

    assert api.master.delete_api_key(token) is None
    for call in (api.master.delete_api_key, api.master.update_api_key):
        _refused(
            lambda call=call: call(token),
            ec.EmbouxNotFound,
            404,
            "API key not found",
        )


def test_webhooks(api):
    """Endpoints are the master's; the secret comes once, and again on a
    rotation."""
    created = api.master.create_webhook(
        "https://93.184.215.14/hooks", ["mailbox.created"]
    )
    assert created["secret"].startswith("whsec_")
    assert created["partner_ref"] is None
    hook_id = created["id"]
    assert "secret" not in api.master.get_webhook(hook_id)
    assert hook_id in [hook["id"] for hook in api.master.list_webhooks().items]
    changed = api.master.update_webhook(
        hook_id, events=["alias.created", "alias.deleted"], rotate_secret=True
    )
    assert changed["events"] == ["alias.created", "alias.deleted"]
    assert changed["secret"] not in (None, created["secret"])
    owner = api.tenant("client_hooks")
    _refused(
        lambda: owner.list_webhooks(),
        ec.EmbouxForbidden,
        403,
        "Master token required",
    )
    api.master.delete_webhook(hook_id)
    _refused(
        lambda: api.master.get_webhook(hook_id),
        ec.EmbouxNotFound,
        404,
        "Webhook not found",
    )


def test_wrong_token(api):
    with ec.EmbouxClient(api.url, "not-a-key-at-all") as stranger:
        _refused(stranger.list_domains, ec.EmbouxForbidden, 403, "Invalid API key")


def test_openapi_documents_the_client_routes(api):
    document = api.master.openapi()
    documented = {
        (path, method)
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert documented == ROUTES
    assert document["paths"]["/api-keys/"]["post"]["x-required-role"] == "master"


# -- against a scripted stub ---------------------------------------------------


class Stub:
    """An HTTP server on 127.0.0.1 that answers each request with the next
    action of its script and records every request.

    An action is a status (a small JSON body goes with it), a ``(status,
    body)`` pair (a text body is sent as is, ``None`` sends none), ``"close"``
    (drop the connection without answering) or ``"stall"`` (say nothing
    until the test ends, past any read timeout). Once the script is spent
    every request gets 200.
    """

    def __init__(self, script, port=0):
        self.script = list(script)
        self.requests = []
        self.released = threading.Event()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), StubHandler)
        self.server.stub = self
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self, method):
        return sum(1 for request in self.requests if request["method"] == method)

    def next_action(self, request):
        with self.lock:
            self.requests.append(request)
            return self.script.pop(0) if self.script else 200

    def stop(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


class StubHandler(BaseHTTPRequestHandler):
    def _answer(self):
        stub = self.server.stub
        length = int(self.headers.get("Content-Length") or 0)
        action = stub.next_action(
            {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers),
                "body": self.rfile.read(length),
            }
        )
        if action in ("close", "stall"):
            if action == "stall":
                stub.released.wait(30)
            self.close_connection = True
            return
        status, body = action if isinstance(action, tuple) else (action, MISSING)
        if body is MISSING:
            ok = status < 400
            body = {"ok": True} if ok else {"detail": HTTPStatus(status).phrase}
            body = None if status == 204 else json.dumps(body)
        self.send_response(status)
        data = (body or "").encode()
        self.send_header("Content-Length", str(len(data)))
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args):
        """Quiet: pytest shows the assertions, not the access log."""


MISSING = object()


@pytest.fixture
def stub():
    """Factory: ``stub(script, port=0)`` starts a Stub, stopped after the test."""
    stubs = []

    def start(script, port=0):
        stubs.append(Stub(script, port))
        return stubs[-1]

    yield start
    for started in stubs:
        started.stop()


def _client(url, sleeps, **kwargs):
    """A client that records its backoff sleeps instead of sleeping."""
    return ec.EmbouxClient(
        url, "stub-token", timeout=(2, 0.5), sleep=sleeps.append, **kwargs
    )


def _assert_growing(sleeps, backoff=0.2):
    """Each sleep is ``backoff * 2**n`` plus at most half of it in jitter,
    so each one is longer than the one before."""
    for attempt, seconds in enumerate(sleeps):
        base = backoff * 2**attempt
        assert base <= seconds <= base * 1.5
    assert sleeps == sorted(sleeps) and len(set(sleeps)) == len(sleeps)


@pytest.mark.parametrize(
    ("method", "call", "final", "expected"),
    [
        ("GET", lambda c: c.dns_check("x.example"), 200, {"ok": True}),
        ("PUT", lambda c: c.suspend("x.example"), 200, {"ok": True}),
        ("DELETE", lambda c: c.delete_domain("x.example"), 204, None),
    ],
)
def test_idempotent_calls_are_retried(stub, method, call, final, expected):
    server = stub([502, 503, "close", final])
    sleeps = []
    with _client(server.url, sleeps) as client:
        assert call(client) == expected
    assert server.count(method) == 4 and len(server.requests) == 4
    assert len(sleeps) == 3
    _assert_growing(sleeps)


def test_idempotent_retries_are_bounded(stub):
    server = stub([503] * 10)
    sleeps = []
    with _client(server.url, sleeps, retries=2) as client:
        error = _refused(
            lambda: client.get_quota("a@x.example"),
            ec.EmbouxServerError,
            503,
            "Service Unavailable",
        )
    assert error.body == {"detail": "Service Unavailable"}
    assert server.count("GET") == 3 and len(sleeps) == 2
    _assert_growing(sleeps)


def test_idempotent_read_timeout_is_retried(stub):
    server = stub(["stall", 200])
    sleeps = []
    with _client(server.url, sleeps) as client:
        assert client.set_password("a@x.example", "pw") == {"ok": True}
        # answered in the end, yet the first try may still land
        assert client.unanswered == 1
    assert server.count("PUT") == 2 and len(sleeps) == 1


@pytest.mark.parametrize("failure", [500, 503, 502])
def test_post_is_not_retried_after_a_server_error(stub, failure):
    server = stub([failure, 201])
    sleeps = []
    with _client(server.url, sleeps) as client:
        error = pytest.raises(ec.EmbouxServerError, client.create_domain, "x.example")
    assert error.value.status == failure
    assert server.count("POST") == 1 and sleeps == []


@pytest.mark.parametrize("failure", ["stall", "close"])
def test_post_is_not_retried_once_sent(stub, failure):
    """A read timeout or a dropped connection: the server may have created
    the domain, so trying again could create it twice."""
    server = stub([failure, 201])
    sleeps = []
    with _client(server.url, sleeps) as client:
        error = pytest.raises(
            ec.EmbouxUnavailable,
            client.create_alias,
            "x.example",
            "@x.example",
            "a@b.c",
        )
        assert client.unanswered == 1
    assert error.value.status is None and error.value.detail is None
    assert server.count("POST") == 1 and sleeps == []


def test_connect_failure_is_retried_then_unavailable():
    port = free_port()
    sleeps = []
    with _client(f"http://127.0.0.1:{port}", sleeps) as client:
        error = pytest.raises(ec.EmbouxUnavailable, client.create_domain, "x.example")
        assert client.unanswered == 0  # never sent: nothing can land
    assert error.value.status is None and "no answer" in str(error.value)
    assert len(sleeps) == 3
    _assert_growing(sleeps)


def test_post_is_retried_when_the_connection_failed(stub):
    """Nothing listens at first; the server comes up during the backoff
    sleep and the POST it then receives is the only one."""
    port = free_port()
    started = []

    def sleep(seconds):
        if not started:
            started.append(stub([(201, '{"id": 7, "name": "late.example"}')], port))

    client = ec.EmbouxClient(f"http://127.0.0.1:{port}", "stub-token", sleep=sleep)
    with client:
        assert client.create_domain("late.example") == {"id": 7, "name": "late.example"}
    assert started[0].count("POST") == 1


def test_requests_carry_token_json_and_quoted_paths(stub):
    server = stub([(200, "[]"), 200, 200])
    with _client(server.url, []) as client:
        assert client.list_mailboxes(domain_id=4, limit=10, offset=20) == ([], 0)
        client.set_quota("a+b/c@x.example", 10)
        client.update_api_key("tok+en=", expires_at=None, active=False)
    listing, quota, key = server.requests
    assert listing["path"] == "/users/?domain_id=4&limit=10&offset=20"
    assert listing["headers"]["Authorization"] == "Bearer stub-token"
    assert quota["path"] == "/users/a%2Bb%2Fc@x.example/quota"
    assert json.loads(quota["body"]) == {"quota_mb": 10}
    assert quota["headers"]["Content-Type"] == "application/json"
    assert key["path"] == "/api-keys/tok%2Ben%3D"
    assert json.loads(key["body"]) == {"active": False, "expires_at": None}


def test_answers_that_are_not_json(stub):
    server = stub([(200, "<html>hello</html>"), (500, "Internal Server Error")])
    with _client(server.url, []) as client:
        error = pytest.raises(ec.EmbouxApiError, client.openapi)
        assert type(error.value) is ec.EmbouxApiError
        assert error.value.status == 200 and "not JSON" in str(error.value)
        assert error.value.body == "<html>hello</html>"
        _refused(client.openapi, ec.EmbouxServerError, 500, "Internal Server Error")


def test_other_statuses_are_the_base_error(stub):
    server = stub([413])
    with _client(server.url, []) as client:
        error = _refused(
            lambda: client.create_domain("x.example"),
            ec.EmbouxApiError,
            413,
            HTTPStatus(413).phrase,
        )
    assert type(error) is ec.EmbouxApiError


def test_error_texts_mask_tokens(stub):
    """A tenant key's token is its path: the client's errors, which end up
    in logs and on records, show only its first characters."""
    token = "emb_tenant_" + secrets.token_urlsafe(16)
    server = stub([404])
    with _client(server.url, []) as client:
        error = pytest.raises(ec.EmbouxNotFound, client.delete_api_key, token)
    assert str(error.value) == "DELETE /api-keys/emb_…: 404 Not Found"
    assert server.requests[0]["path"] == f"/api-keys/{token}"
    # no answer at all: requests' own text names the URL too
    with _client(f"http://127.0.0.1:{free_port()}", [], retries=0) as client:
        error = pytest.raises(ec.EmbouxUnavailable, client.api_key_usage, token)
    assert "/api-keys/emb_…/usage" in str(error.value)
    assert token not in str(error.value)
