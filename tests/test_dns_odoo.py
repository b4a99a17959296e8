"""DNS health in Odoo, against Knot: through the REST API's dns-check, the
Check DNS button and the scheduled action, on a server of its own."""

import secrets

import dns_zones
import pytest
from api_client import Api
from rpc import OdooRpc

KINDS = ("MX", "SPF", "DKIM", "DMARC")
CRON = "emboux_mail.ir_cron_emboux_mail_dns_check"


@pytest.fixture(scope="module")
def server(run_server, dns_server):
    master_token = secrets.token_urlsafe(24)
    # no cron thread: the scheduled check runs only when a test triggers it
    # (the thread would wake at the first domain and check them all at once)
    server = run_server(
        "dns", env={"EMBOUX_API_KEY": master_token}, args=["--max-cron-threads", "0"]
    )
    rpc = OdooRpc(server.url, server.db)
    dns_zones.use_test_zones(rpc, dns_server, batch_size=2)
    # the demo domains are not in the test zones: mark them checked
    demo = rpc.call("emboux.mail.domain", "search", [])
    rpc.call(
        "emboux.mail.domain", "write", demo, {"dns_checked_at": "2099-01-01 00:00:00"}
    )
    master = Api(server.url, master_token)
    token = "emb_dns_" + secrets.token_urlsafe(16)
    master.ok("POST", "/api-keys/", {"token": token, "partner_ref": "dns_tenant"}, 201)
    customer = Api(server.url, token)
    ids = {}
    for domain in sorted(dns_zones.CASES):
        ids[domain] = customer.ok("POST", "/domains/", {"name": domain}, 201)["id"]
    # each domain signs with a key of its own, made at its first DNS look;
    # its customer publishes the record the form then shows
    for domain in ids:
        customer.ok("GET", f"/domains/{domain}/dns-check")
    values = {
        row["name"].split(".")[0]: row["dkim_record_value"]
        for row in rpc.call(
            "emboux.mail.domain",
            "read",
            list(ids.values()),
            ["name", "dkim_record_value"],
        )
    }
    server.zone = dns_zones.zone_records(values)
    server.nodkim_record = dns_zones.dkim_line("nodkim", values["nodkim"])
    server.rpc, server.customer, server.ids = rpc, customer, ids
    dns_server.update(dns_zones.ZONE, server.zone)
    yield server
    dns_server.update(dns_zones.ZONE, dns_zones.ZONE_RECORDS)


def _statuses(records):
    by_kind = {}
    for record in records:
        by_kind.setdefault(record["kind"], record["status"])
    return tuple(by_kind[kind] for kind in KINDS)


def _stored(server, domain):
    records = server.rpc.call(
        "emboux.mail.dns.record",
        "search_read",
        [("domain_id", "=", server.ids[domain])],
        fields=["kind", "status", "expected", "found"],
        order="sequence",
    )
    state = server.rpc.call(
        "emboux.mail.domain", "read", [server.ids[domain]], ["dns_state"]
    )
    return _statuses(records), state[0]["dns_state"]


def test_api_dns_check(server):
    for domain, expected in dns_zones.CASES.items():
        answer = server.customer.ok("GET", f"/domains/{domain}/dns-check")
        assert set(answer) == {"name", "all_ok", "records"}
        assert answer["name"] == domain
        assert answer["all_ok"] is (set(expected) == {"ok"})
        types = [record["record_type"] for record in answer["records"]]
        assert types == ["MX", "TXT", "TXT", "TXT"]
        assert tuple(r["status"] for r in answer["records"]) == expected, domain
        for record in answer["records"]:
            assert set(record) == {"record_type", "name", "expected", "status"}


def test_scheduled_action_in_batches_oldest_first(server):
    rpc = server.rpc
    cron = rpc.call("ir.model.data", "check_object_reference", *CRON.split("."))[1]
    order = sorted(server.ids.values())
    for batch in range(3):
        rpc.call("ir.cron", "method_direct_trigger", [cron])
        checked = rpc.call(
            "emboux.mail.domain",
            "search",
            [("id", "in", order), ("dns_checked_at", "!=", False)],
            order="id",
        )
        # two per run, never-checked first in creation order: it resumes
        assert checked == order[: 2 * (batch + 1)]
        progress = rpc.call(
            "ir.cron.progress",
            "search_read",
            [("cron_id", "=", cron)],
            fields=["done", "remaining"],
            order="id desc",
            limit=1,
        )
        assert progress[0]["done"] == 2
        assert progress[0]["remaining"] == len(order) - 2 * (batch + 1)
    for domain, expected in dns_zones.CASES.items():
        assert _stored(server, domain) == (expected, dns_zones.HEALTH[domain])


def test_button_and_health_change_messages(server, dns_server):
    rpc = server.rpc
    nodkim = server.ids[f"nodkim.{dns_zones.ZONE}"]
    rpc.call("emboux.mail.domain", "action_check_dns", list(server.ids.values()))
    for domain, expected in dns_zones.CASES.items():
        assert _stored(server, domain) == (expected, dns_zones.HEALTH[domain])
    found = rpc.call(
        "emboux.mail.dns.record",
        "search_read",
        [
            ("domain_id", "=", server.ids[f"wrongmx.{dns_zones.ZONE}"]),
            ("kind", "=", "MX"),
        ],
        fields=["expected", "found"],
    )
    assert found == [
        {"id": found[0]["id"], "expected": dns_zones.MX, "found": "mail.elsewhere.test"}
    ]

    def messages(domain_id):
        return rpc.call(
            "mail.message",
            "search_read",
            [
                ("model", "=", "emboux.mail.domain"),
                ("res_id", "=", domain_id),
                ("body", "ilike", "DNS health changed"),
            ],
            fields=["body"],
        )

    before = messages(nodkim)
    rpc.call("emboux.mail.domain", "action_check_dns", [nodkim])
    assert messages(nodkim) == before  # unchanged health: no message
    dns_server.update(dns_zones.ZONE, server.zone + server.nodkim_record)
    try:
        rpc.call("emboux.mail.domain", "action_check_dns", [nodkim])
        assert _stored(server, f"nodkim.{dns_zones.ZONE}")[1] == "ok"
        after = messages(nodkim)
        assert len(after) == len(before) + 1
        assert "from Incomplete to Healthy" in after[0]["body"]
    finally:
        dns_server.update(dns_zones.ZONE, server.zone)
    rpc.call("emboux.mail.domain", "action_check_dns", [nodkim])
    activities = rpc.call(
        "mail.activity",
        "search_read",
        [("res_model", "=", "emboux.mail.domain"), ("res_id", "=", nodkim)],
        fields=["summary", "user_id"],
    )
    assert [a["summary"] for a in activities] == [
        f"DNS of nodkim.{dns_zones.ZONE}: Incomplete"
    ]
    owner = rpc.call("emboux.mail.domain", "read", [nodkim], ["user_id"])[0]["user_id"]
    assert activities[0]["user_id"] == owner


def test_timeout_is_unknown_through_the_button(server, dns_server):
    rpc = server.rpc
    good = server.ids[f"good.{dns_zones.ZONE}"]
    rpc.call(
        "ir.config_parameter",
        "set_param",
        "emboux_mail.dns_port",
        str(dns_server.blackhole.port),
    )
    try:
        rpc.call("emboux.mail.domain", "action_check_dns", [good])
        statuses, health = _stored(server, f"good.{dns_zones.ZONE}")
        assert statuses == ("unknown",) * 4 and health == "unknown"
        answer = server.customer.ok("GET", f"/domains/good.{dns_zones.ZONE}/dns-check")
        assert {r["status"] for r in answer["records"]} == {"unknown"}
    finally:
        rpc.call(
            "ir.config_parameter",
            "set_param",
            "emboux_mail.dns_port",
            str(dns_server.port),
        )
