"""Connected mode end to end: server A (upstream set) provisions server B
through B's EmBoux API, from A's ORM over JSON-RPC."""

import secrets

import pytest
from api_client import Api
from rpc import OdooRpc, RpcError


@pytest.fixture(scope="module")
def servers(run_server):
    token = "emb_master_" + secrets.token_urlsafe(24)
    b = run_server("sync_b", env={"EMBOUX_API_KEY": token})
    a = run_server("sync_a")
    rpc = OdooRpc(a.url, a.db)
    rpc.call("ir.config_parameter", "set_param", "emboux_mail.upstream_url", b.url)
    rpc.call("ir.config_parameter", "set_param", "emboux_mail.upstream_token", token)
    return rpc, Api(b.url, token)


def names(api, path, field):
    return {item[field] for item in api.ok("GET", path)}


def test_changes_reach_upstream(servers):
    rpc, b = servers
    plan = rpc.call(
        "emboux.mail.plan",
        "create",
        {"name": "Sync", "domains_allowed": 1, "mailboxes_per_domain": 2},
    )
    tenant = rpc.call(
        "res.partner",
        "create",
        {"name": "Sync Co", "is_company": True, "emboux_plan_id": plan},
    )
    key_token = "emb_tenant_" + secrets.token_urlsafe(16)
    key = rpc.call(
        "emboux.mail.api.key", "create", {"partner_id": tenant, "token": key_token}
    )
    usage = b.ok("GET", f"/api-keys/{key_token}/usage")
    assert usage is not None

    domain = rpc.call(
        "emboux.mail.domain", "create", {"name": "sync.example", "partner_id": tenant}
    )
    assert "sync.example" in names(b, "/domains/", "name")
    mailbox = rpc.call(
        "emboux.mail.mailbox",
        "create",
        {"email": "a@sync.example", "password": "first-pass-1"},
    )
    assert "a@sync.example" in names(b, "/users/", "email")
    rpc.call(
        "emboux.mail.alias",
        "create",
        {"source": "b@sync.example", "destination": "a@sync.example"},
    )
    assert "b@sync.example" in names(b, "/aliases/", "source")
    rpc.call("emboux.mail.mailbox", "write", [mailbox], {"password": "second-pass-2"})
    rpc.call("emboux.mail.domain", "write", [domain], {"suspended": True})
    # suspending again upstream answers the same state
    assert b.ok("PUT", "/domains/sync.example/suspend")["suspended"] is True

    # B's quota refusal (1 domain) reaches A's user with B's detail
    with pytest.raises(RpcError) as refused:
        rpc.call(
            "emboux.mail.domain",
            "create",
            {"name": "second.example", "partner_id": tenant},
        )
    assert "quota exceeded" in str(refused.value)
    assert "second.example" not in names(b, "/domains/", "name")

    rpc.call("emboux.mail.domain", "unlink", [domain])
    assert "sync.example" not in names(b, "/domains/", "name")
    rpc.call("emboux.mail.api.key", "unlink", [key])
    assert b("GET", f"/api-keys/{key_token}/usage").status_code == 404
