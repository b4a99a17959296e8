"""The production layout of setup/nginx/emboux-mail.conf on loopback: nginx
(the sample configuration, unchanged) in front of two prefork HTTP nodes
without cron, a cron node, one database. What the API promises on one
server must hold there too: the same answers through the proxy, the
client's address recorded, tenants kept apart, a quota exact under a race
spread over both nodes, and no accepted write lost when a node dies."""

import base64
import hashlib
import itertools
import re
import secrets
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import portal_tour
import pytest
import requests
import test_api_e2e as api_e2e
import test_sync_topology as sync_run
import test_webhooks as hooks
from api_client import Api
from emboux_setup.paths import VAR
from emboux_setup.postgres import Standby
from requests.adapters import HTTPAdapter
from rpc import OdooRpc
from topology import CRON_ARGS, Node, Topology

# the clients' address: nginx itself reaches the nodes from 127.0.0.1, so
# Odoo records this one only if --proxy-mode reads X-Forwarded-For
CLIENT_ADDRESS = "127.0.0.7"
SPOOFED = "203.0.113.9"  # what a client claims in its own X-Forwarded-For
RACE = 50
QUOTA = 5
LOAD = 200
LOAD_THREADS = 16
KILL_AFTER = 60  # answers received before one node is killed
CRON_ITEMS = 40  # mailboxes and aliases of the two-cron-node test
# a webhook delivery or usage warning run that a cron node finished
JOB_DONE_RE = re.compile(
    r"Job 'Email Hosting: (?:deliver webhooks|warn of nearly full mailboxes)'"
    r" \(\d+\) done"
)
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class FromClientAddress(HTTPAdapter):
    """Connect from ``CLIENT_ADDRESS`` rather than from nginx's own."""

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (CLIENT_ADDRESS, 0)
        super().init_poolmanager(*args, **kwargs)


def client(topology, token):
    """The REST API through nginx, with ``token``."""
    api = Api(topology.url, token)
    api.session.mount("http://", FromClientAddress())
    return api


def tenant(master, ref, **quotas):
    """A customer's key, created by the master through nginx."""
    token = f"emb_{ref}_{secrets.token_urlsafe(16)}"
    body = {"token": token, "partner_ref": ref, **quotas}
    return token, master.ok("POST", "/api-keys/", body, 201)


def detail(response):
    return response.status_code, response.json()["detail"]


def creation(entry):
    return (entry.method, entry.uri) == ("POST", "/users/")


def served(topology, entries):
    """How many of ``entries`` each HTTP node answered: (node 1, node 2)."""
    counts = Counter(entry.upstream for entry in entries)
    return tuple(counts[topology.address(node)] for node in topology.http)


def wait_access(topology, mark, predicate, count, timeout=30):
    """The access log's entries since ``mark`` matching ``predicate``, once
    there are ``count`` (or ``timeout`` passed): nginx writes a line after
    the answer went out, the client may read it first, and a websocket's
    line comes when its connection has closed."""
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in topology.nginx.access()[mark:] if predicate(e)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def websocket_handshake(topology, cookies):
    """Open a websocket through nginx and close it: the status line and
    whether Sec-WebSocket-Accept answers our key."""
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    request = (
        "GET /websocket HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{topology.nginx.port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: {topology.url}\r\nCookie: {cookie}\r\n\r\n"
    )
    head = b""
    with socket.create_connection(("127.0.0.1", topology.nginx.port), 30) as sock:
        sock.sendall(request.encode())
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    lines = head.decode("latin-1").split("\r\n")
    expected = base64.b64encode(
        hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()
    ).decode()
    return lines[0], f"Sec-WebSocket-Accept: {expected}" in lines


def json_rpc(session, url, params):
    response = session.post(
        url, json={"jsonrpc": "2.0", "method": "call", "params": params}, timeout=60
    )
    return response.json()["result"]


def login(topology):
    """A browser session of the admin, opened through nginx."""
    browser = requests.Session()
    browser.mount("http://", FromClientAddress())
    browser.uid = json_rpc(
        browser,
        f"{topology.url}/web/session/authenticate",
        {"db": topology.db, "login": "admin", "password": "admin"},
    )["uid"]
    return browser


@pytest.fixture(scope="module")
def topology(run_server, cluster, tmp_path_factory):
    started = time.monotonic()
    standby = Standby(cluster, VAR / "pg-standby").start()
    try:
        topology = Topology(
            run_server, "production", tmp_path_factory.mktemp("nginx"), standby
        )
    except BaseException:
        standby.remove()
        raise
    ports = ", ".join(str(node.port) for node in topology.http)
    print(
        f"\ntopology up in {time.monotonic() - started:.0f} s: nginx "
        f"{topology.nginx.port} -> HTTP nodes {ports} (websocket "
        f"{', '.join(map(str, topology.gevent_ports))}), cron node "
        f"{topology.cron.port}, standby on port {standby.port}"
    )
    yield topology
    try:
        topology.stop()
    finally:
        standby.remove()


def test_both_nodes_serve_the_api_through_nginx(topology):
    nodes = {topology.address(node) for node in topology.http}

    # health: round robin over both nodes
    mark = len(topology.nginx.access())
    for _ in range(6):
        health = requests.get(f"{topology.url}/web/health", timeout=30)
        assert health.status_code == 200 and health.json()["status"] == "pass"
    checks = wait_access(topology, mark, lambda e: e.uri == "/web/health", 6)
    assert {e.upstream for e in checks} == nodes

    # one session, opened on a node, known to both (the shared data_dir)
    browser = login(topology)
    mark = len(topology.nginx.access())
    for _ in range(4):
        info = json_rpc(browser, f"{topology.url}/web/session/get_session_info", {})
        assert info["uid"] == browser.uid
    infos = wait_access(topology, mark, lambda e: "get_session_info" in e.uri, 4)
    assert {e.upstream for e in infos} == nodes

    # the REST API, as the master and as customers
    master = client(topology, topology.master_token)
    master.session.headers["X-Forwarded-For"] = SPOOFED
    alpha_token, alpha_key = tenant(
        master,
        "prod_alpha",
        domains_allowed=2,
        mailboxes_per_domain=3,
        aliases_per_mailbox=2,
    )
    beta_token, _ = tenant(master, "prod_beta", domains_allowed=1)
    alpha, beta = client(topology, alpha_token), client(topology, beta_token)
    mark = len(topology.nginx.access())
    domain = alpha.ok("POST", "/domains/", {"name": "Prod-Alpha.example"}, 201)
    assert domain["name"] == "prod-alpha.example"
    for serial, user in enumerate(("ann", "bob", "cy")):
        body = {
            "domain_name": "prod-alpha.example",
            "email": f"{user}@prod-alpha.example",
            "password": f"pw-{serial}-secret-{serial}",
        }
        alpha.ok("POST", "/users/", body, 201)
    body = {**body, "email": "dee@prod-alpha.example"}
    full = alpha("POST", "/users/", json=body)
    assert detail(full) == (403, "Mailbox quota exceeded for this domain")
    alpha.ok(
        "POST",
        "/aliases/",
        {
            "domain_name": "prod-alpha.example",
            "source": "info@prod-alpha.example",
            "destination": "ann@prod-alpha.example",
        },
        201,
    )
    other = {"name": "prod-beta.example", "partner_ref": "prod_beta"}
    other = master.ok("POST", "/domains/", other, 201)
    master.ok(
        "POST",
        "/users/",
        {
            "domain_name": "prod-beta.example",
            "email": "eve@prod-beta.example",
            "password": "pw-4-secret-4",
        },
        201,
    )
    master.ok(
        "POST",
        "/aliases/",
        {
            "domain_name": "prod-beta.example",
            "source": "@prod-beta.example",
            "destination": "eve@prod-beta.example",
        },
        201,
    )
    api_calls = wait_access(
        topology,
        mark,
        lambda e: e.method == "POST" and e.uri in ("/domains/", "/users/", "/aliases/"),
        9,
    )
    assert len(api_calls) == 9 and {e.upstream for e in api_calls} == nodes

    # paging headers come through the proxy
    pages = [
        alpha("GET", f"/users/?domain_id={domain['id']}&limit=2&offset={offset}")
        for offset in (0, 2)
    ]
    assert [len(page.json()) for page in pages] == [2, 1]
    assert [page.headers["X-Total-Count"] for page in pages] == ["3", "3"]
    assert {b["email"] for page in pages for b in page.json()} == {
        "ann@prod-alpha.example",
        "bob@prod-alpha.example",
        "cy@prod-alpha.example",
    }

    # a customer never sees another tenant's objects
    assert [d["name"] for d in beta.ok("GET", "/domains/")] == ["prod-beta.example"]
    assert [d["name"] for d in alpha.ok("GET", "/domains/")] == ["prod-alpha.example"]
    for method, path in [
        ("DELETE", "/domains/prod-beta.example"),
        ("PUT", "/domains/prod-beta.example/suspend"),
        ("GET", "/domains/prod-beta.example/dns-check"),
    ]:
        assert detail(alpha(method, path)) == (404, "Domain not found"), path
    intruder = {
        **body,
        "domain_name": "prod-beta.example",
        "email": "x@prod-beta.example",
    }
    assert detail(alpha("POST", "/users/", json=intruder)) == (404, "Domain not found")
    password = {"password": "pw-x-12345"}
    stolen = alpha("PUT", "/users/eve@prod-beta.example", json=password)
    assert detail(stolen) == (404, "Mailbox not found")
    assert alpha.ok("GET", f"/users/?domain_id={other['id']}") == []
    assert [a["source"] for a in alpha.ok("GET", "/aliases/")] == [
        "info@prod-alpha.example"
    ]
    assert beta.ok("GET", "/users/")[0]["email"] == "eve@prod-beta.example"

    # the address Odoo recorded is the client's, not nginx's nor the
    # client's claim; /jsonrpc reads on the standby, once it has replayed
    topology.standby.wait_replayed()
    rpc = OdooRpc(topology.url, topology.db)
    [logged] = rpc.call(
        "emboux.mail.security.log",
        "search_read",
        [
            ("event", "=", "key_created"),
            ("res_model", "=", "emboux.mail.api.key"),
            ("res_id", "=", alpha_key["id"]),
        ],
        ["address", "channel"],
    )
    audits = rpc.call(
        "emboux.mail.audit",
        "search_read",
        [("res_model", "=", "emboux.mail.domain"), ("res_id", "=", domain["id"])],
        ["address", "channel"],
    )
    node_1, node_2 = served(topology, api_calls)
    print(
        f"API through nginx: {len(api_calls)} writes, node 1 {node_1} / node 2 "
        f"{node_2}; address recorded {logged['address']} (client {CLIENT_ADDRESS})"
    )
    # the admin's login through nginx set the public URL, not a node's
    base_url = rpc.call("ir.config_parameter", "get_param", "web.base.url")
    assert base_url == topology.url
    assert (logged["address"], logged["channel"]) == (CLIENT_ADDRESS, "api")
    assert audits and {(a["address"], a["channel"]) for a in audits} == {
        (CLIENT_ADDRESS, "api")
    }


def test_websocket_through_nginx(topology):
    broken = topology.wait_websocket()
    assert not broken, f"the nodes' gevent processes do not start: {broken}"
    gevents = {f"127.0.0.1:{port}" for port in topology.gevent_ports}
    browser = login(topology)
    mark = len(topology.nginx.access())
    for _ in range(2):
        status, accepted = websocket_handshake(topology, browser.cookies)
        assert status.startswith("HTTP/1.1 101") and accepted, status
    upgrades = wait_access(topology, mark, lambda e: e.uri == "/websocket", 2)
    print(f"websocket through nginx: {len(upgrades)} upgrades, on both gevent ports")
    assert [e.status for e in upgrades] == [101, 101]
    assert {e.upstream for e in upgrades} == gevents


def test_bodies_and_files_through_nginx(topology):
    # an attachment larger than nginx's default limit (1m) goes through,
    # and is read back from the shared filestore by each node
    payload = secrets.token_bytes(3 * 1024 * 1024)
    rpc = OdooRpc(topology.url, topology.db)
    attachment = rpc.call(
        "ir.attachment",
        "create",
        {"name": "prod-big.bin", "datas": base64.b64encode(payload).decode()},
    )
    for node in topology.http:
        [read] = OdooRpc(node.url, topology.db).call(
            "ir.attachment", "read", [attachment], ["datas", "store_fname"]
        )
        assert base64.b64decode(read["datas"]) == payload
    stored = VAR / "data" / "filestore" / topology.db / read["store_fname"]
    assert stored.read_bytes() == payload

    # the API's own 1 MB limit still answers, in JSON
    big = '{"name": "big.example", "pad": "' + "x" * (1100 * 1000) + '"}'
    refused = client(topology, topology.master_token)(
        "POST", "/domains/", data=big, headers={"Content-Type": "application/json"}
    )
    assert refused.status_code == 413 and isinstance(refused.json()["detail"], str)

    # over client_max_body_size nginx refuses before reading the body
    with socket.create_connection(("127.0.0.1", topology.nginx.port), 30) as sock:
        sock.sendall(
            b"POST /jsonrpc HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (65 * 1024 * 1024)
        )
        status = sock.recv(4096).split(b"\r\n")[0].decode()
    print(f"bodies through nginx: 3 MB attachment read back by both nodes; {status}")
    assert " 413 " in status


def test_quota_race_over_both_nodes(topology):
    master = client(topology, topology.master_token)
    token, _ = tenant(master, "prod_race", mailboxes_per_domain=QUOTA)
    client(topology, token).ok("POST", "/domains/", {"name": "race-prod.example"}, 201)
    clients = [client(topology, token) for _ in range(RACE)]
    barrier = threading.Barrier(RACE)
    mark = len(topology.nginx.access())

    def create(index):
        barrier.wait()
        response = clients[index](
            "POST",
            "/users/",
            json={
                "domain_name": "race-prod.example",
                "email": f"u{index}@race-prod.example",
                "password": "pw-1234567890",
            },
        )
        return response.status_code, response.text

    with ThreadPoolExecutor(RACE) as pool:
        results = list(pool.map(create, range(RACE)))
    statuses = sorted(status for status, _text in results)
    entries = wait_access(topology, mark, creation, RACE)
    node_1, node_2 = served(topology, entries)
    created = served(topology, [e for e in entries if e.status == 201])
    print(
        f"quota race through nginx: {statuses.count(201)} created, "
        f"{statuses.count(403)} refused, node 1 {node_1} / node 2 {node_2} "
        f"(created: {created[0]} / {created[1]})"
    )
    assert statuses == [201] * QUOTA + [403] * (RACE - QUOTA), results
    assert all(
        text == '{"detail": "Mailbox quota exceeded for this domain"}'
        for status, text in results
        if status == 403
    ), results
    assert len(entries) == RACE and node_1 and node_2
    listed = client(topology, token)("GET", "/users/")
    assert listed.headers["X-Total-Count"] == str(QUOTA)


def test_api_scenarios_through_nginx(topology):
    """The REST API's end-to-end scenarios, unchanged, through nginx: every
    request may land on either node."""
    server = SimpleNamespace(url=topology.url)
    master = Api(topology.url, topology.master_token)
    mark = len(topology.nginx.access())
    api_e2e.test_full_scenario(master, server)
    api_e2e.test_auth_failures(master, server)
    api_e2e.test_openapi_lists_master_routes(server)
    calls = topology.nginx.access()[mark:]
    print(f"\nAPI scenarios through nginx: {dict(Counter(e.upstream for e in calls))}")
    assert {e.upstream for e in calls} == {
        topology.address(node) for node in topology.http
    }


def call_kw(browser, topology, model, method, *args, **kwargs):
    """A call of the web client (``/web/dataset/call_kw``): Odoo sends the
    read-only ones (``search_read``) to the replica."""
    params = {"model": model, "method": method, "args": args, "kwargs": kwargs}
    return json_rpc(browser, f"{topology.url}/web/dataset/call_kw", params)


def test_standby_serves_reads_and_the_api_reads_its_writes(topology):
    """With the standby's replay paused, what the API just wrote is not
    there for the web client's read-only calls (served by the standby),
    while the API, on the primary, reads each write at once on either node;
    once replayed, the standby has them too."""
    standby = topology.standby
    master = client(topology, topology.master_token)
    browser = login(topology)
    names = [f"replica{n}.example" for n in range(10)]
    domain = [("name", "in", names)]
    mark = len(topology.nginx.access())
    standby.psql("SELECT pg_wal_replay_pause()")
    try:
        for name in names:
            master.ok("POST", "/domains/", {"name": name}, 201)
            assert "retention_days" in master.ok("GET", f"/domains/{name}/retention")
            email = f"first@{name}"
            body = {"domain_name": name, "email": email, "password": "Replica-pw-4711"}
            master.ok("POST", "/users/", body, 201)
            assert master.ok("GET", f"/users/{email}/quota")["email"] == email
        paused = call_kw(browser, topology, "emboux.mail.domain", "search_read", domain)
        odoo_on_standby = int(
            standby.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                f"'{topology.db}' AND application_name LIKE 'odoo-%'"
            )
        )
    finally:
        standby.psql("SELECT pg_wal_replay_resume()")
    standby.wait_replayed()
    replayed = call_kw(browser, topology, "emboux.mail.domain", "search_read", domain)
    calls = wait_access(
        topology,
        mark,
        lambda e: "replica" in e.uri or e.uri in ("/domains/", "/users/"),
        4 * len(names),
    )
    nodes = [(e.method, e.upstream) for e in calls]
    print(
        f"\nstandby: {len(names)} domains and mailboxes written then read back "
        f"at once through nginx ({dict(Counter(nodes))}); the web client read "
        f"{len(paused)} of the domains while the standby's replay was paused, "
        f"{len(replayed)} once replayed; {odoo_on_standby} Odoo connections "
        "on the standby"
    )
    assert paused == []
    assert sorted(d["name"] for d in replayed) == names
    assert odoo_on_standby > 0
    # round robin: the writes and the reads came to both nodes
    assert {e.upstream for e in calls} == {
        topology.address(node) for node in topology.http
    }


def test_portal_tour_through_nginx(topology):
    """The customer portal's browser tour, in Chromium, through nginx: each
    of its requests may land on either node."""
    rpc = OdooRpc(topology.url, topology.db)
    prepared = portal_tour.prepare(rpc)
    mark = len(topology.nginx.access())
    portal_tour.run(topology.url, prepared["login"], prepared["password"])
    portal_tour.check(rpc, prepared)
    pages = [e for e in topology.nginx.access()[mark:] if e.uri.startswith("/my")]
    print(f"\nportal tour through nginx: {dict(Counter(e.upstream for e in pages))}")
    assert {e.upstream for e in pages} == {
        topology.address(node) for node in topology.http
    }


def test_sync_to_an_upstream_through_nginx(topology, run_server, cluster):
    """The A to B run of test_sync_topology with this topology as A: the
    threads' changes go through nginx to both nodes, each reaches B once,
    and A and B end holding the same."""
    token = "emb_master_" + secrets.token_urlsafe(24)
    b = run_server("production_b", env={"EMBOUX_API_KEY": token})
    a = SimpleNamespace(url=topology.url, db=topology.db)
    sync = sync_run.Topology(b, a, topology.http[1], token)
    changes = sync_run.Changes()
    started = time.monotonic()
    sync.connect(b.url)
    try:
        tenants = sync.tenants("Production", 2)
        shared = [
            sync.rpc.call(
                "emboux.mail.domain",
                "create",
                {"name": f"s{k}.topo.example", "partner_id": tenants[k % 2]},
            )
            for k in range(sync_run.SHARED_DOMAINS)
        ]
        sync_run.run_phase(sync, changes, 1, tenants, shared)
        rounds = sync.drain()
        mine, theirs = sync_run.a_and_b(sync, ".topo.example")
    finally:
        sync.connect("")
        b.stop()
        cluster.drop_database(b.db)
    print(
        f"\nsync through nginx: {sum(changes.accepted.values())} changes "
        f"accepted {dict(changes.accepted)}, refused {dict(changes.refused)}, "
        f"drained in {rounds} rounds; B holds {len(theirs[0])} domains and "
        f"{len(theirs[1])} mailboxes; {time.monotonic() - started:.0f}s"
    )
    sync_run.assert_ran(changes, rounds)
    assert mine == theirs


def kick(cluster, rpc, db, xmlid):
    """Make a job due now and wake every cron node, as a commit that
    triggers it does: each node then tries to take it."""
    [cron] = rpc.call(
        "ir.model.data",
        "search_read",
        [("module", "=", "emboux_mail"), ("name", "=", xmlid)],
        fields=["res_id"],
    )
    now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    rpc.call("ir.cron.trigger", "create", {"cron_id": cron["res_id"], "call_at": now})
    cluster.psql(f"SELECT pg_notify('cron_trigger', '{db}')")


def test_two_cron_nodes_run_each_due_item_once(topology, cluster):
    """A second cron node beside the first: the webhook deliveries and the
    mailbox usage warnings, woken on both nodes at once and failing often at
    the receiver, reach it once per event, and each nearly full mailbox is
    warned once."""
    env = {"EMBOUX_API_KEY": topology.master_token}
    cron2 = Node(topology.db, "cron2", env, CRON_ARGS)
    rpc = OdooRpc(topology.url, topology.db)
    receiver = hooks._serve(hooks.Receiver(hooks.flaky(seed=17)))
    settings = {
        "emboux_mail.webhook_allow_private": "1",
        "emboux_mail.webhook_timeout": str(hooks.TIMEOUT),
        "emboux_mail.webhook_retry_schedule": ",".join(["0.5"] * 12),
    }
    try:
        for name, value in settings.items():
            rpc.call("ir.config_parameter", "set_param", name, value)
        master = client(topology, topology.master_token)
        token, _key = tenant(master, hooks.TENANT_REF, mailboxes_per_domain=100)
        customer = client(topology, token)
        customer.ok("POST", "/domains/", {"name": "crons.example"}, 201)
        emails = [f"box{n}@crons.example" for n in range(CRON_ITEMS)]
        for email in emails:
            body = {
                "domain_name": "crons.example",
                "email": email,
                "password": "Crons-pass-4711",
            }
            customer.ok("POST", "/users/", body, 201)
            customer.ok("PUT", f"/users/{email}/quota", {"quota_mb": 1})
        webhook_id, receiver.secret = hooks._endpoint(
            rpc, receiver.url, ["alias.created", "mailbox.quota_near_full"]
        )
        for n, email in enumerate(emails):
            body = {
                "domain_name": "crons.example",
                "source": f"alias{n}@crons.example",
                "destination": email,
            }
            customer.ok("POST", "/aliases/", body, 201)
        # Dovecot's quota_clone would write these: every mailbox at 85%
        rows = ", ".join(
            f"('{email}', {int(0.85 * 1024 * 1024)}, 3)" for email in emails
        )
        cluster.psql(
            "INSERT INTO emboux_mail_mailbox_usage (email, bytes, messages) "
            f"VALUES {rows}",
            dbname=topology.db,
        )
        for _ in range(5):
            kick(cluster, rpc, topology.db, "ir_cron_mailbox_usage_warnings")
            time.sleep(0.3)
        partner = [
            ("partner_id.emboux_partner_ref", "=", hooks.TENANT_REF),
            ("topic", "in", ["alias.created", "mailbox.quota_near_full"]),
        ]
        hooks._wait(
            lambda: rpc.call("emboux.mail.webhook.event", "search_count", partner)
            >= 2 * CRON_ITEMS,
            120,
            "the usage warnings were not all sent",
        )
        events = rpc.call(
            "emboux.mail.webhook.event",
            "search_read",
            partner,
            ["message_id", "topic"],
        )
        event_ids = {e["message_id"] for e in events}
        hooks.wait_delivered(rpc, receiver, webhook_id, event_ids, 300)
        succeeded = rpc.call(
            "emboux.mail.webhook.attempt",
            "search_count",
            [("webhook_id", "=", webhook_id), ("succeeded", "=", True)],
        )
        warnings = Counter(
            m["res_id"]
            for m in rpc.call(
                "mail.message",
                "search_read",
                [
                    ("model", "=", "emboux.mail.mailbox"),
                    ("subject", "ilike", "nearly full"),
                ],
                ["res_id"],
            )
        )
    finally:
        receiver.shutdown()
        rpc.call(
            "ir.config_parameter", "set_param", "emboux_mail.webhook_allow_private", "0"
        )
        cron2.stop()
    runs = [len(JOB_DONE_RE.findall(node.output())) for node in (topology.cron, cron2)]
    topics = Counter(e["topic"] for e in events)
    print(
        f"\ntwo cron nodes: {len(events)} events {dict(topics)}, "
        f"{sum(receiver.received.values())} attempts, {succeeded} succeeded; "
        f"{len(warnings)} mailboxes warned, at most {max(warnings.values())} "
        f"times; webhook and warning runs, node 1 {runs[0]} / node 2 {runs[1]}"
    )
    assert topics == {
        "alias.created": CRON_ITEMS,
        "mailbox.quota_near_full": CRON_ITEMS,
    }
    assert {k for k, _p in receiver.kept} == event_ids
    assert succeeded == len(event_ids)
    assert len(warnings) == CRON_ITEMS and set(warnings.values()) == {1}


def test_killing_a_node_loses_no_accepted_write(topology):
    victim, survivor = topology.http[1], topology.http[0]
    master = client(topology, topology.master_token)
    token, _ = tenant(master, "prod_failover", mailboxes_per_domain=1000)
    domain = client(topology, token).ok(
        "POST", "/domains/", {"name": "failover.example"}, 201
    )
    answers = [None] * LOAD  # (sent at, status or error name)
    indexes = itertools.count()
    lock = threading.Lock()
    finished = [0]
    enough = threading.Event()
    mark = len(topology.nginx.access())

    def email(index):
        return f"f{index}@failover.example"

    def load():
        api = client(topology, token)
        while (index := next(indexes)) < LOAD:
            sent = time.time()
            try:
                outcome = api(
                    "POST",
                    "/users/",
                    json={
                        "domain_name": "failover.example",
                        "email": email(index),
                        "password": "pw-1234567890",
                    },
                ).status_code
            except requests.RequestException as error:
                outcome = type(error).__name__
            answers[index] = (sent, outcome)
            with lock:
                finished[0] += 1
                if finished[0] >= KILL_AFTER:
                    enough.set()

    threads = [threading.Thread(target=load) for _ in range(LOAD_THREADS)]
    for thread in threads:
        thread.start()
    assert enough.wait(timeout=180), "the load did not start"
    topology.kill(victim)
    dead_at = time.time()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)

    listed = master("GET", f"/users/?domain_id={domain['id']}&limit=1000")
    assert listed.status_code == 200
    assert listed.headers.get("Content-Encoding") == "gzip"  # nginx's gzip
    stored = {box["email"] for box in listed.json()}
    assert listed.headers["X-Total-Count"] == str(len(stored))
    accepted = {i for i, (_s, outcome) in enumerate(answers) if outcome in (200, 201)}
    failed = Counter(outcome for _s, outcome in answers if outcome not in (200, 201))
    after = [outcome for sent, outcome in answers if sent >= dead_at]
    entries = wait_access(topology, mark, creation, LOAD)
    late = [e for e in entries if e.start >= dead_at]
    before = served(topology, [e for e in entries if e.start < dead_at])
    unanswered = stored - {email(i) for i in accepted}
    after_kill = served(topology, late)
    print(
        f"node 2 killed mid-load: {len(accepted)} of {LOAD} accepted "
        f"({sum(o == 201 for o in after)} of {len(after)} sent after the kill), "
        f"failed {dict(failed)}, {len(unanswered)} stored without an answer; "
        f"before the kill node 1 {before[0]} / node 2 {before[1]}, "
        f"after it node 1 {after_kill[0]} / node 2 {after_kill[1]}"
    )
    # every accepted write exists
    assert not {email(i) for i in accepted} - stored
    # a write the dead node was serving may fail, nothing else
    assert set(failed) <= {502, "ConnectionError"}, failed
    # both nodes served before the kill, only the survivor after it, and
    # every request sent after the kill was accepted
    assert all(before), before
    assert after and all(outcome == 201 for outcome in after), after
    assert late and {e.upstream for e in late} == {topology.address(survivor)}
