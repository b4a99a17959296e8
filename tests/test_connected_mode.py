"""Connected mode end to end: server A (upstream set) provisions server B
through B's EmBoux API, from A's ORM over JSON-RPC."""

import random
import secrets
import time

import pytest
from api_client import Api
from fault_proxy import FAULTS, FaultProxy
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


# -- fault injection -------------------------------------------------------------
OPERATIONS = 320
SEED = 20261123
CLIENT_TIMEOUT = 2  # A's read timeout upstream (emboux_mail.upstream_timeout)


def a_state(rpc):
    """A's domains, mailboxes and aliases, as lists (duplicates kept)."""
    domains = rpc.call(
        "emboux.mail.domain", "search_read", [], fields=["name", "suspended"]
    )
    mailboxes = rpc.call("emboux.mail.mailbox", "search_read", [], fields=["email"])
    aliases = rpc.call("emboux.mail.alias", "search_read", [], fields=["source"])
    return domains, mailboxes, aliases


def random_operation(rpc, rnd, tenant, serial):
    """One random change through A's ORM; returns its name."""
    domains, mailboxes, aliases = a_state(rpc)
    choices = ["domain_create"] * 3
    if domains:
        choices += ["mailbox_create"] * 4 + ["alias_create"] * 3
        choices += ["domain_toggle"] * 2 + ["domain_delete"]
    if mailboxes:
        choices += ["password"] * 2 + ["mailbox_delete"]
    if aliases:
        choices += ["alias_delete"]
    operation = rnd.choice(choices)
    if operation == "domain_create":
        rpc.call(
            "emboux.mail.domain",
            "create",
            {"name": f"d{serial}.fault.example", "partner_id": tenant},
        )
    elif operation == "domain_delete":
        rpc.call("emboux.mail.domain", "unlink", [rnd.choice(domains)["id"]])
    elif operation == "domain_toggle":
        domain = rnd.choice(domains)
        rpc.call(
            "emboux.mail.domain",
            "write",
            [domain["id"]],
            {"suspended": not domain["suspended"]},
        )
    elif operation == "mailbox_create":
        domain = rnd.choice(domains)["name"]
        rpc.call(
            "emboux.mail.mailbox",
            "create",
            {"email": f"m{serial}@{domain}", "password": f"pass-{serial}-x1"},
        )
    elif operation == "mailbox_delete":
        rpc.call("emboux.mail.mailbox", "unlink", [rnd.choice(mailboxes)["id"]])
    elif operation == "password":
        rpc.call(
            "emboux.mail.mailbox",
            "write",
            [rnd.choice(mailboxes)["id"]],
            {"password": f"new-pass-{serial}-y2"},
        )
    elif operation == "alias_create":
        domain = rnd.choice(domains)["name"]
        rpc.call(
            "emboux.mail.alias",
            "create",
            {"source": f"a{serial}@{domain}", "destination": f"to{serial}@x.org"},
        )
    elif operation == "alias_delete":
        rpc.call("emboux.mail.alias", "unlink", [rnd.choice(aliases)["id"]])
    return operation


def drain(rpc, cron_id, rounds):
    """Retry and deliver the outbox until nothing is pending; the number of
    rounds used, or None when ``rounds`` were not enough."""
    for round_ in range(rounds):
        pending = rpc.call(
            "emboux.mail.sync.event", "search", [("state", "=", "pending")]
        )
        if not pending:
            return round_
        rpc.call("emboux.mail.sync.event", "action_retry", pending)
        try:
            rpc.call("ir.cron", "method_direct_trigger", [cron_id])
        except RpcError as error:
            # A's own cron worker runs it already (action_retry triggers it)
            if "currently being executed" not in str(error):
                raise
            time.sleep(1)
    return None


def xmlid_res_id(rpc, name):
    [data] = rpc.call(
        "ir.model.data",
        "search_read",
        [("module", "=", "emboux_mail"), ("name", "=", name)],
        fields=["res_id"],
    )
    return data["res_id"]


def test_fault_injection_converges(servers):
    rpc, b = servers
    b_host, b_port = b.base_url.split("//")[1].rsplit(":", 1)
    rnd = random.Random(SEED)
    plan = rpc.call(
        "emboux.mail.plan",
        "create",
        {
            "name": "Faults",
            "domains_allowed": 1000,
            "mailboxes_per_domain": 1000,
            "aliases_per_mailbox": 1000,
        },
    )
    tenant = rpc.call(
        "res.partner",
        "create",
        {"name": "Fault Co", "is_company": True, "emboux_plan_id": plan},
    )
    rpc.call(
        "emboux.mail.api.key",
        "create",
        {"partner_id": tenant, "token": "emb_tenant_" + secrets.token_urlsafe(16)},
    )
    sync_cron = xmlid_res_id(rpc, "ir_cron_emboux_mail_sync")
    accepted, refused = {}, {}
    with FaultProxy(
        b_host, int(b_port), rate=0.2, seed=SEED, hold=CLIENT_TIMEOUT + 1.5
    ) as proxy:
        params = ("ir.config_parameter", "set_param")
        rpc.call(*params, "emboux_mail.upstream_timeout", str(CLIENT_TIMEOUT))
        rpc.call(*params, "emboux_mail.upstream_url", proxy.url)
        try:
            for serial in range(OPERATIONS):
                try:
                    operation = random_operation(rpc, rnd, tenant, serial)
                except RpcError as error:
                    name = str(error).split(":")[0][:60]
                    refused[name] = refused.get(name, 0) + 1
                else:
                    accepted[operation] = accepted.get(operation, 0) + 1
                # an operator retrying now and then: keeps the backlog short,
                # so that password changes are not all refused
                drain(rpc, sync_cron, 3)
            rounds = drain(rpc, sync_cron, 100)
            assert rounds is not None, "the outbox did not drain"
            for _attempt in range(10):
                action = rpc.call("emboux.mail.reconcile", "action_reconcile")
                [run] = rpc.call(
                    "emboux.mail.reconcile",
                    "read",
                    [action["res_id"]],
                    [
                        "state",
                        "imported_domains",
                        "imported_mailboxes",
                        "imported_aliases",
                        "import_failures",
                        "local_only",
                        "differences",
                        "report",
                    ],
                )
                if run["state"] == "done":
                    break
            assert run["state"] == "done", run["report"]
            faults = dict(proxy.counts)
        finally:
            rpc.call(*params, "emboux_mail.upstream_url", b.base_url)
            rpc.call(*params, "emboux_mail.upstream_timeout", "")
    errors = rpc.call(
        "emboux.mail.sync.event", "search_count", [("state", "=", "error")]
    )
    domains, mailboxes, aliases = a_state(rpc)
    a_sets = (
        [d["name"] for d in domains],
        [m["email"] for m in mailboxes],
        [a["source"] for a in aliases],
    )
    b_sets = (
        [d["name"] for d in b.ok("GET", "/domains/")],
        [m["email"] for m in b.ok("GET", "/users/")],
        [a["source"] for a in b.ok("GET", "/aliases/")],
    )
    print(
        f"\nfault injection: {OPERATIONS} operations, accepted {accepted}, "
        f"refused {refused}; proxy {faults}; drained in {rounds} rounds; "
        f"outbox events refused upstream {errors}"
    )
    print(
        "reconcile: imported {imported_domains} domains, {imported_mailboxes} "
        "mailboxes, {imported_aliases} aliases, {import_failures} failed, "
        "{local_only} only in A, {differences} different".format(**run)
    )
    for label, a_list, b_list in zip(
        ("domains", "mailboxes", "aliases"), a_sets, b_sets, strict=True
    ):
        print(f"{label}: A {len(a_list)}, B {len(b_list)}")
        assert len(a_list) == len(set(a_list)), f"duplicate {label} in A"
        assert len(b_list) == len(set(b_list)), f"duplicate {label} in B"
    assert sum(faults[f] for f in FAULTS) > 0
    assert run["local_only"] == 0, run["report"]
    for a_list, b_list in zip(a_sets, b_sets, strict=True):
        assert set(a_list) == set(b_list)
