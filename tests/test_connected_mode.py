"""Connected mode end to end: server A (upstream set) provisions server B
through B's EmBoux API, from A's ORM over JSON-RPC. No tenant token is ever
in clear in the databases or in the servers' logs."""

import random
import secrets
import time

import pytest
from api_client import Api
from fault_proxy import FAULTS, FaultProxy
from passlib.hash import sha512_crypt
from rpc import OdooRpc, RpcError


@pytest.fixture(scope="module")
def servers(run_server):
    token = "emb_master_" + secrets.token_urlsafe(24)
    b = run_server("sync_b", env={"EMBOUX_API_KEY": token})
    a = run_server("sync_a", env={"EMBOUX_SECRET_KEY": secrets.token_urlsafe(32)})
    rpc = OdooRpc(a.url, a.db)
    rpc.call("ir.config_parameter", "set_param", "emboux_mail.upstream_url", b.url)
    rpc.call("ir.config_parameter", "set_param", "emboux_mail.upstream_token", token)
    return rpc, Api(b.url, token), b, a


def tables_holding(cluster, db, tokens):
    """The tables of ``db`` with a row whose text holds one of ``tokens``
    (URL-safe, so a regular expression of them needs no escaping)."""
    pattern = "|".join(tokens)
    return cluster.psql(
        "SELECT string_agg(table_name, ', ') FROM information_schema.tables "
        "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' "
        "AND (xpath('/row/n/text()', query_to_xml(format("
        "'SELECT count(*) AS n FROM %I t WHERE t::text ~ %L', "
        f"table_name, '{pattern}'), false, true, '')))[1]::text <> '0'",
        dbname=db,
    )


def assert_tokens_secret(cluster, tokens, *servers):
    """No tenant token in clear in the servers' databases or logs."""
    for server in servers:
        assert not tables_holding(cluster, server.db, tokens), server.db
        log = server.output()
        assert not [t for t in tokens if t in log], server.log_path


def names(api, path, field):
    return {item[field] for item in api.ok("GET", path)}


class Upstream:
    """B seen from outside: its REST API (master token), its ORM over
    JSON-RPC, and its database (the stored password hashes)."""

    def __init__(self, api, server, cluster):
        self.api = api
        self.rpc = OdooRpc(server.url, server.db)
        self.server = server
        self.cluster = cluster

    def domain(self, name):
        """B's domain record: owner's reference, parent, flags."""
        [domain] = self.rpc.call(
            "emboux.mail.domain",
            "search_read",
            [("name", "=", name)],
            fields=["partner_id", "parent_id", "is_wildcard", "verified", "suspended"],
        )
        ref = False
        if domain["partner_id"]:
            [partner] = self.rpc.call(
                "res.partner",
                "read",
                [domain["partner_id"][0]],
                ["emboux_partner_ref"],
            )
            ref = partner["emboux_partner_ref"]
        return {
            "owner": ref,
            "parent": domain["parent_id"] and domain["parent_id"][1],
            "is_wildcard": domain["is_wildcard"],
            "verified": domain["verified"],
            "suspended": domain["suspended"],
        }

    def domain_names(self):
        return names(self.api, "/domains/", "name")

    def mailboxes(self, domain_name):
        [domain_id] = [
            d["id"] for d in self.api.ok("GET", "/domains/") if d["name"] == domain_name
        ]
        return names(self.api, f"/users/?domain_id={domain_id}", "email")

    def aliases(self):
        """B's aliases of this test's domains (B holds demo records too)."""
        return {
            a["source"]: a["destination"]
            for a in self.api.ok("GET", "/aliases/")
            if a["source"].endswith("wild.example")
        }

    def usage(self, token):
        usage = self.api.ok("GET", f"/api-keys/{token}/usage")
        return usage["partner_ref"], usage["domains_used"]

    def password_is(self, email, password):
        stored = self.cluster.psql(
            f"SELECT password_hash FROM emboux_mail_mailbox WHERE email = '{email}'",
            dbname=self.server.db,
        )
        assert stored.startswith("{SHA512-CRYPT}"), stored
        return sha512_crypt.verify(password, stored.removeprefix("{SHA512-CRYPT}"))


def a_domain(rpc, name):
    [domain] = rpc.call(
        "emboux.mail.domain",
        "search_read",
        [("name", "=", name)],
        fields=[
            "partner_ref",
            "parent_id",
            "is_wildcard",
            "verified",
            "provider",
            "suspended",
            "sync_state",
        ],
    )
    return domain


def same_domain(rpc, up, name):
    """A's domain and B's hold the same owner, parent and flags."""
    mine, theirs = a_domain(rpc, name), up.domain(name)
    assert mine["sync_state"] == "synced", mine
    assert theirs == {
        "owner": mine["partner_ref"],
        "parent": mine["parent_id"] and mine["parent_id"][1],
        "is_wildcard": mine["is_wildcard"],
        "verified": mine["verified"],
        "suspended": mine["suspended"],
    }
    return theirs


def test_changes_reach_upstream(servers, cluster):
    rpc, b, b_server, a_server = servers
    up = Upstream(b, b_server, cluster)
    plan = rpc.call(
        "emboux.mail.plan",
        "create",
        {"name": "Sync", "domains_allowed": 3, "mailboxes_per_domain": 3},
    )
    # -- two tenants with their keys: B knows each key's tenant --------------
    tenants, tokens, keys = [], [], []
    for name in ("Sync Co", "Other Co"):
        tenant = rpc.call(
            "res.partner",
            "create",
            {"name": name, "is_company": True, "emboux_plan_id": plan},
        )
        token = "emb_tenant_" + secrets.token_urlsafe(16)
        keys.append(
            rpc.call(
                "emboux.mail.api.key",
                "create",
                {"partner_id": tenant, "token": token},
            )
        )
        tenants.append(tenant)
        tokens.append(token)
    refs = [
        p["emboux_partner_ref"]
        for p in rpc.call("res.partner", "read", tenants, ["emboux_partner_ref"])
    ]
    assert all(refs) and refs[0] != refs[1]
    assert [up.usage(t) for t in tokens] == [(refs[0], 0), (refs[1], 0)]
    # A keeps them, encrypted, to address the keys on B
    encrypted = cluster.psql(
        "SELECT count(upstream_token_encrypted) FROM emboux_mail_api_key "
        f"WHERE id IN ({keys[0]}, {keys[1]})",
        dbname=a_server.db,
    )
    assert encrypted == "2"
    assert_tokens_secret(cluster, tokens, a_server, b_server)

    # -- a domain, made a wildcard parent through A ----------------------------
    wild = rpc.call(
        "emboux.mail.domain",
        "create",
        {"name": "wild.example", "partner_id": tenants[0]},
    )
    assert "wild.example" in up.domain_names()
    assert same_domain(rpc, up, "wild.example")["owner"] == refs[0]
    rpc.call("emboux.mail.domain", "write", [wild], {"is_wildcard": True})
    assert same_domain(rpc, up, "wild.example")["is_wildcard"] is True
    # the provider verifies the parent (on B, and A learns it)
    up.rpc.call(
        "emboux.mail.domain",
        "write",
        up.rpc.call("emboux.mail.domain", "search", [("name", "=", "wild.example")]),
        {"verified": True, "provider": "acme-mail"},
    )
    rpc.call("emboux.mail.domain", "write", [wild], {"verified": True})
    same_domain(rpc, up, "wild.example")

    # -- its subdomain: created, linked and registered on B, B's answer kept on A
    sub = rpc.call(
        "emboux.mail.domain",
        "create",
        {"name": "sub.wild.example", "partner_id": tenants[0]},
    )
    linked = same_domain(rpc, up, "sub.wild.example")
    assert linked["parent"] == "wild.example" and linked["verified"] is True
    assert a_domain(rpc, "sub.wild.example")["provider"] == "acme-mail"
    assert [up.usage(t) for t in tokens] == [(refs[0], 2), (refs[1], 0)]

    # -- B's quota refusals reach A's user with B's own message ---------------
    # (B is stricter than A: A's own rules let these changes through)
    b.ok("PUT", f"/api-keys/{tokens[0]}", {"domains_allowed": 2})
    with pytest.raises(RpcError) as refused:
        rpc.call(
            "emboux.mail.domain",
            "create",
            {"name": "third.example", "partner_id": tenants[0]},
        )
    assert str(refused.value) == "Upstream EmBoux API: Domain quota exceeded: 2/2"
    assert "third.example" not in up.domain_names()
    assert not rpc.call(
        "emboux.mail.domain", "search", [("name", "=", "third.example")]
    )

    # -- mailboxes, and a password change B's stored hash verifies -------------
    mailbox = rpc.call(
        "emboux.mail.mailbox",
        "create",
        {"email": "a@wild.example", "password": "first-pass-1"},
    )
    rpc.call(
        "emboux.mail.mailbox",
        "create",
        {"email": "c@wild.example", "password": "other-pass-3"},
    )
    assert up.mailboxes("wild.example") == {"a@wild.example", "c@wild.example"}
    assert up.password_is("a@wild.example", "first-pass-1")
    rpc.call("emboux.mail.mailbox", "write", [mailbox], {"password": "second-pass-2"})
    assert up.password_is("a@wild.example", "second-pass-2")
    assert not up.password_is("a@wild.example", "first-pass-1")
    assert up.password_is("c@wild.example", "other-pass-3")
    b.ok("PUT", f"/api-keys/{tokens[0]}", {"mailboxes_per_domain": 2})
    with pytest.raises(RpcError) as refused:
        rpc.call(
            "emboux.mail.mailbox",
            "create",
            {"email": "d@wild.example", "password": "fourth-pass-4"},
        )
    assert str(refused.value).startswith("Upstream EmBoux API: ")
    assert "quota exceeded" in str(refused.value).lower()
    assert up.mailboxes("wild.example") == {"a@wild.example", "c@wild.example"}

    # -- aliases: the same source and destination on both ---------------------
    alias = rpc.call(
        "emboux.mail.alias",
        "create",
        {"source": "b@wild.example", "destination": "a@wild.example"},
    )

    def a_aliases():
        return {
            a["source"]: a["destination"]
            for a in rpc.call(
                "emboux.mail.alias",
                "search_read",
                [("source", "like", "%wild.example")],
                fields=["source", "destination"],
            )
        }

    assert up.aliases() == a_aliases() == {"b@wild.example": "a@wild.example"}
    rpc.call("emboux.mail.alias", "write", [alias], {"destination": "x@other.org"})
    assert up.aliases() == a_aliases() == {"b@wild.example": "x@other.org"}

    # -- suspend, activate ------------------------------------------------------
    rpc.call("emboux.mail.domain", "write", [wild], {"suspended": True})
    assert same_domain(rpc, up, "wild.example")["suspended"] is True
    rpc.call("emboux.mail.domain", "write", [wild], {"suspended": False})
    assert same_domain(rpc, up, "wild.example")["suspended"] is False
    rpc.call("emboux.mail.domain", "write", [wild], {"suspended": True})
    assert same_domain(rpc, up, "wild.example")["suspended"] is True

    # -- an owner transfer: B moves the domain and both tenants' counts ----------
    rpc.call("emboux.mail.domain", "write", [sub], {"partner_id": tenants[1]})
    assert same_domain(rpc, up, "sub.wild.example")["owner"] == refs[1]
    assert [up.usage(t) for t in tokens] == [(refs[0], 1), (refs[1], 1)]

    # -- delete: gone on B with its mailboxes and aliases ------------------------
    rpc.call("emboux.mail.domain", "unlink", [wild])
    assert up.domain_names() & {"wild.example", "sub.wild.example"} == {
        "sub.wild.example"
    }
    assert not any(
        email.endswith("@wild.example") for email in names(b, "/users/", "email")
    )
    assert up.aliases() == a_aliases() == {}
    # the subdomain stays, without its parent, on both
    assert same_domain(rpc, up, "sub.wild.example")["parent"] is False
    assert [up.usage(t) for t in tokens] == [(refs[0], 0), (refs[1], 1)]
    rpc.call("emboux.mail.domain", "unlink", [sub])
    assert "sub.wild.example" not in up.domain_names()
    rpc.call("emboux.mail.api.key", "unlink", keys)
    for token in tokens:
        assert b("GET", f"/api-keys/{token}/usage").status_code == 404
    # nothing of it waits or failed in A's outbox
    assert not rpc.call("emboux.mail.sync.event", "search", [("state", "!=", "done")])
    # B's access log showed the keys' paths, masked
    assert "/api-keys/emb_…" in b_server.output()
    assert_tokens_secret(cluster, tokens, a_server, b_server)


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


def test_fault_injection_converges(servers, cluster):
    rpc, b, b_server, a_server = servers
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
    token = "emb_tenant_" + secrets.token_urlsafe(16)
    rpc.call("emboux.mail.api.key", "create", {"partner_id": tenant, "token": token})
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
    assert_tokens_secret(cluster, [token], a_server, b_server)
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
