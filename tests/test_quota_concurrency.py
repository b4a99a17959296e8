"""Quotas and uniqueness hold under parallel transactions.

Odoo's test cursors serialise every request of a TransactionCase or an
HttpCase, so this runs against a real ``./setup/run`` server: 20 clients
call the ORM over JSON-RPC at once, each call in its own transaction.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

from rpc import OdooRpc, RpcError

PARALLEL = 20


def _race(server, model, vals_for):
    """Create ``PARALLEL`` records at once; return (created ids, errors)."""
    clients = [OdooRpc(server.url, server.db) for _ in range(PARALLEL)]
    barrier = threading.Barrier(PARALLEL)

    def create(index):
        barrier.wait()
        try:
            return "ok", clients[index].call(model, "create", vals_for(index))
        except RpcError as error:
            return "error", str(error)

    with ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(create, range(PARALLEL)))
    created = [value for kind, value in results if kind == "ok"]
    errors = [value for kind, value in results if kind == "error"]
    return created, errors


def _tenant(rpc, name, **quotas):
    plan = rpc.call("emboux.mail.plan", "create", {"name": name, **quotas})
    return rpc.call(
        "res.partner",
        "create",
        {"name": name, "is_company": True, "emboux_plan_id": plan},
    )


def test_parallel_mailboxes_stop_at_the_quota(demo_server):
    rpc = OdooRpc(demo_server.url, demo_server.db)
    tenant = _tenant(rpc, "Race Mailboxes", mailboxes_per_domain=5)
    domain = rpc.call(
        "emboux.mail.domain",
        "create",
        {"name": "race-mb.example", "partner_id": tenant},
    )
    created, errors = _race(
        demo_server,
        "emboux.mail.mailbox",
        lambda index: {
            "email": f"user{index}@race-mb.example",
            "password": "pw-12345678",
        },
    )
    print(f"mailboxes: {len(created)} created, {len(errors)} refused")
    assert len(created) == 5
    assert len(errors) == PARALLEL - 5
    assert all("mailbox quota exceeded (5 of 5" in error for error in errors), errors
    count = rpc.call(
        "emboux.mail.mailbox", "search_count", [("domain_id", "=", domain)]
    )
    stored = rpc.call("emboux.mail.domain", "read", [domain], ["mailbox_count"])
    assert count == stored[0]["mailbox_count"] == 5


def test_parallel_domains_stop_at_the_quota(demo_server):
    rpc = OdooRpc(demo_server.url, demo_server.db)
    tenant = _tenant(rpc, "Race Domains", domains_allowed=3)
    created, errors = _race(
        demo_server,
        "emboux.mail.domain",
        lambda index: {"name": f"race{index}.example", "partner_id": tenant},
    )
    print(f"domains: {len(created)} created, {len(errors)} refused")
    assert len(created) == 3
    assert all("domain quota exceeded (3 of 3" in error for error in errors), errors
    partner = rpc.call("res.partner", "read", [tenant], ["emboux_domain_count"])
    assert partner[0]["emboux_domain_count"] == 3


def test_parallel_same_domain_name_created_once(demo_server):
    rpc = OdooRpc(demo_server.url, demo_server.db)
    tenant = _tenant(rpc, "Race Names", domains_allowed=0)
    created, errors = _race(
        demo_server,
        "emboux.mail.domain",
        lambda index: {"name": "same-name.example", "partner_id": tenant},
    )
    assert len(created) == 1
    assert all("'same-name.example' already exists" in error for error in errors), (
        errors
    )
    partner = rpc.call("res.partner", "read", [tenant], ["emboux_domain_count"])
    assert partner[0]["emboux_domain_count"] == 1
