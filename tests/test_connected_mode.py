"""Connected mode end to end: server A (upstream set) provisions server B
through B's EmBoux API, from A's ORM over JSON-RPC. No tenant token is ever
in clear in the databases or in the servers' logs."""

import json
import random
import secrets
import time
from collections import Counter, defaultdict

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
    # nothing of it waits in A's outbox; the two refused saves stay visible
    # there, refused, and nothing else was taken back
    states = Counter(
        e["state"]
        for e in rpc.call("emboux.mail.sync.event", "search_read", [], fields=["state"])
    )
    assert (states["pending"], states["error"], states["undone"]) == (0, 2, 0), states
    # B's access log showed the keys' paths, masked
    assert "/api-keys/emb_…" in b_server.output()
    assert_tokens_secret(cluster, tokens, a_server, b_server)


# -- fault injection -------------------------------------------------------------
OPERATIONS = 1000
SEED = 20261129
CLIENT_TIMEOUT = 1  # A's read timeout upstream (emboux_mail.upstream_timeout)
FAULT_RATE = 0.12
DOMAIN_FIELDS = [
    "name",
    "partner_id",
    "suspended",
    "suspension_reason",
    "parent_id",
    "is_wildcard",
    "verified",
]
KEY_FIELDS = ["domains_allowed", "mailboxes_per_domain", "aliases_per_mailbox"]


def hosting_state(rpc):
    """Every field both sides hold, read through a server's ORM: domains
    (owner by tenant reference), mailboxes (quota), aliases (destination),
    and each tenant's key quotas."""
    refs = {
        p["id"]: p["emboux_partner_ref"]
        for p in rpc.call(
            "res.partner",
            "search_read",
            [("emboux_partner_ref", "!=", False)],
            fields=["emboux_partner_ref"],
            context={"active_test": False},
        )
    }
    domains = {
        d["name"]: (
            refs.get(d["partner_id"] and d["partner_id"][0]),
            d["suspended"],
            d["suspension_reason"],
            d["parent_id"] and d["parent_id"][1],
            d["is_wildcard"],
            d["verified"],
        )
        for d in rpc.call(
            "emboux.mail.domain",
            "search_read",
            [("name", "like", ".fault.example")],
            fields=DOMAIN_FIELDS,
        )
    }
    mailboxes = {
        m["email"]: m["quota_mb"]
        for m in rpc.call(
            "emboux.mail.mailbox",
            "search_read",
            [("email", "like", ".fault.example")],
            fields=["email", "quota_mb"],
        )
    }
    aliases = {
        a["source"]: a["destination"]
        for a in rpc.call(
            "emboux.mail.alias",
            "search_read",
            [("source", "like", ".fault.example")],
            fields=["source", "destination"],
        )
    }
    keys = defaultdict(list)  # a tenant's active keys: one on each side
    for k in rpc.call(
        "emboux.mail.api.key",
        "search_read",
        [("partner_id.emboux_partner_ref", "like", "fault_")],
        fields=["partner_id", *KEY_FIELDS],
        order="id",
    ):
        keys[refs[k["partner_id"][0]]].append(tuple(k[f] for f in KEY_FIELDS))
    return {
        "domains": domains,
        "mailboxes": mailboxes,
        "aliases": aliases,
        "keys": dict(keys),
    }


class FaultRun:
    """Random saves through A's ORM over JSON-RPC, many of them multi-step:
    a domain with inline mailboxes and aliases, cascade deletes, quotas of
    several mailboxes at once, token swaps, owner transfers, plan changes;
    and saves a local rule refuses after earlier steps were queued."""

    def __init__(self, rpc, rnd, tenants, keys, plans):
        self.rpc, self.rnd = rpc, rnd
        self.tenants, self.keys, self.plans = tenants, keys, plans
        self.serial = 0

    def call(self, *args, **kwargs):
        return self.rpc.call(*args, **kwargs)

    def state(self):
        domains = self.call(
            "emboux.mail.domain",
            "search_read",
            [("name", "like", ".fault.example")],
            fields=["name", "suspended", "partner_id"],
        )
        mailboxes = self.call(
            "emboux.mail.mailbox",
            "search_read",
            [("email", "like", ".fault.example")],
            fields=["email", "domain_id"],
        )
        aliases = self.call(
            "emboux.mail.alias",
            "search_read",
            [("source", "like", ".fault.example")],
            fields=["source", "domain_id"],
        )
        return domains, mailboxes, aliases

    def mailbox_vals(self, domain):
        self.serial += 1
        return {
            "email": f"m{self.serial}@{domain}",
            "password": f"pass-{self.serial}-x1-long",
        }

    def alias_vals(self, domain):
        self.serial += 1
        return {
            "source": f"a{self.serial}@{domain}",
            "destination": f"to{self.serial}@x.org",
        }

    def new_domain(self, inline=0, bad=False):
        self.serial += 1
        name = f"d{self.serial}.fault.example"
        vals = {"name": name, "partner_id": self.rnd.choice(self.tenants)}
        if inline:
            mailboxes = [self.mailbox_vals(name) for _ in range(inline)]
            if bad:  # a local rule refuses the last one, after the others
                mailboxes.append(
                    {"email": "not an address", "password": "pw-0123456789"}
                )
            vals["mailbox_ids"] = [[0, 0, m] for m in mailboxes]
            vals["alias_ids"] = [
                [0, 0, self.alias_vals(name)] for _ in range(self.rnd.randint(0, 2))
            ]
        self.call("emboux.mail.domain", "create", vals)

    def run_one(self):
        """One random save; returns its name."""
        domains, mailboxes, aliases = self.state()
        choices = ["domain_inline"] * 4 + ["domain", "domain_local_failure"]
        if domains:
            choices += ["mailbox"] * 4 + ["alias"] * 3 + ["suspend"] * 2
            choices += ["domain_delete", "owner", "plan", "plan_assign", "token"]
        if mailboxes:
            choices += ["quota"] * 2 + ["quotas", "password", "mailbox_delete"]
        if aliases:
            choices += ["retarget", "alias_delete", "aliases_delete"]
        operation = self.rnd.choice(choices)
        picked = (
            self.rnd.choice(domains) if domains else None,
            self.rnd.choice(mailboxes) if mailboxes else None,
            self.rnd.choice(aliases) if aliases else None,
        )
        getattr(self, f"op_{operation}")(*picked, mailboxes, aliases)
        return operation

    # each operation: (a domain, a mailbox, an alias, all mailboxes, all aliases)
    def op_domain_inline(self, *_picked):
        self.new_domain(inline=self.rnd.randint(1, 3))

    def op_domain(self, *_picked):
        self.new_domain()

    def op_domain_local_failure(self, *_picked):
        self.new_domain(inline=self.rnd.randint(1, 2), bad=True)

    def op_mailbox(self, domain, *_picked):
        self.call("emboux.mail.mailbox", "create", self.mailbox_vals(domain["name"]))

    def op_alias(self, domain, *_picked):
        self.call("emboux.mail.alias", "create", self.alias_vals(domain["name"]))

    def op_suspend(self, domain, *_picked):
        if domain["suspended"]:
            self.call("emboux.mail.domain", "action_activate", [domain["id"]])
            return
        reason = self.rnd.choice(["operator", "billing"])
        self.call(
            "emboux.mail.domain",
            "write",
            [domain["id"]],
            {"suspended": True, "suspension_reason": reason},
        )

    def op_domain_delete(self, domain, *_picked):
        self.call("emboux.mail.domain", "unlink", [domain["id"]])

    def op_owner(self, domain, *_picked):
        others = [t for t in self.tenants if t != domain["partner_id"][0]]
        self.call(
            "emboux.mail.domain",
            "write",
            [domain["id"]],
            {"partner_id": self.rnd.choice(others)},
        )

    def op_plan(self, *_picked):
        self.call(
            "emboux.mail.plan",
            "write",
            [self.rnd.choice(self.plans)],
            {"mailboxes_per_domain": self.rnd.randint(500, 900)},
        )

    def op_plan_assign(self, *_picked):
        self.call(
            "res.partner",
            "write",
            [self.rnd.choice(self.tenants)],
            {"emboux_plan_id": self.rnd.choice(self.plans)},
        )

    def op_token(self, *_picked):
        self.serial += 1
        token = f"emb_tenant_{self.serial}_" + secrets.token_urlsafe(12)
        key = self.rnd.choice(sorted(self.keys))
        self.call("emboux.mail.api.key", "write", [key], {"token": token})
        self.keys[key] = token

    def op_quota(self, _domain, mailbox, *_picked):
        self.call(
            "emboux.mail.mailbox",
            "write",
            [mailbox["id"]],
            {"quota_mb": self.rnd.randint(100, 900)},
        )

    def op_quotas(self, _domain, mailbox, _alias, mailboxes, _aliases):
        same = [m["id"] for m in mailboxes if m["domain_id"] == mailbox["domain_id"]]
        self.call(
            "emboux.mail.mailbox",
            "write",
            same,
            {"quota_mb": self.rnd.randint(100, 900)},
        )

    def op_password(self, _domain, mailbox, *_picked):
        self.serial += 1
        self.call(
            "emboux.mail.mailbox",
            "write",
            [mailbox["id"]],
            {"password": f"new-pass-{self.serial}-y2-long"},
        )

    def op_mailbox_delete(self, _domain, mailbox, *_picked):
        self.call("emboux.mail.mailbox", "unlink", [mailbox["id"]])

    def op_retarget(self, _domain, _mailbox, alias, *_lists):
        self.serial += 1
        self.call(
            "emboux.mail.alias",
            "write",
            [alias["id"]],
            {"destination": f"re{self.serial}@x.org"},
        )

    def op_alias_delete(self, _domain, _mailbox, alias, *_lists):
        self.call("emboux.mail.alias", "unlink", [alias["id"]])

    def op_aliases_delete(self, _domain, _mailbox, alias, _mailboxes, aliases):
        same = [a["id"] for a in aliases if a["domain_id"] == alias["domain_id"]]
        self.call("emboux.mail.alias", "unlink", same)


def drain(rpc, cron_id, rounds):
    """Retry and deliver the outbox until nothing is pending; the number of
    rounds used, or None when ``rounds`` were not enough. Rounds are half a
    second apart: the undoing of a call that got no answer waits until that
    call cannot be on its way any more."""
    for round_ in range(rounds):
        pending = rpc.call(
            "emboux.mail.sync.event", "search", [("state", "=", "pending")]
        )
        if not pending:
            return round_
        if round_:
            time.sleep(0.5)
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


def refusal_kind(error):
    text = str(error)
    if "Refused by the fault proxy" in text:
        return "refused upstream"
    if "cannot be reached" in text:
        return "no answer, password"
    if "cannot wait" in text:
        return "backlog, password"
    if "is suspended" in text:
        return "refused here: suspended domain"
    if "not an address" in text or "not a valid" in text.lower():
        return "refused here: invalid address"
    return text[:70]


def field_count(value):
    """How many fields a value of ``hosting_state`` holds."""
    if isinstance(value, list):
        return sum(map(field_count, value))
    return len(value) if isinstance(value, tuple) else 1


def outbox_history(rpc, names):
    """The outbox events whose payload names one of ``names``, in order."""
    events = rpc.call(
        "emboux.mail.sync.event",
        "search_read",
        [],
        fields=["batch", "operation", "state", "last_error", "undoes_id", "payload"],
        order="id",
    )
    return {
        name: [
            (e["id"], e["batch"][:8], e["operation"], e["state"], e["last_error"])
            + (e["undoes_id"], (e["payload"] or {}).get("values"))
            for e in events
            if name in json.dumps(e["payload"])
        ]
        for name in names
    }


def test_fault_injection_converges(servers, cluster):
    """A thousand saves from A while the link to B fails (no answer, a
    reset, a lost answer after B applied the call, a refusal): before any
    reconcile, A and B hold the same objects field by field; the reconcile
    then finds nothing to import and nothing different."""
    rpc, b, b_server, a_server = servers
    b_host, b_port = b.base_url.split("//")[1].rsplit(":", 1)
    rnd = random.Random(SEED)
    plans = [
        rpc.call(
            "emboux.mail.plan",
            "create",
            {
                "name": f"Faults {n}",
                "domains_allowed": 1000,
                "mailboxes_per_domain": 1000,
                "aliases_per_mailbox": 1000,
            },
        )
        for n in range(2)
    ]
    tenants, keys = [], {}
    for n in range(3):
        tenant = rpc.call(
            "res.partner",
            "create",
            {
                "name": f"Fault Co {n}",
                "is_company": True,
                "emboux_plan_id": plans[n % 2],
                "emboux_partner_ref": f"fault_{n}",
            },
        )
        token = "emb_tenant_" + secrets.token_urlsafe(16)
        key = rpc.call(
            "emboux.mail.api.key", "create", {"partner_id": tenant, "token": token}
        )
        tenants.append(tenant)
        keys[key] = token
    sync_cron = xmlid_res_id(rpc, "ir_cron_emboux_mail_sync")
    run = FaultRun(rpc, rnd, tenants, keys, plans)
    accepted, refused = Counter(), Counter()
    tokens = set(keys.values())
    params = ("ir.config_parameter", "set_param")
    with FaultProxy(
        b_host,
        int(b_port),
        rate=FAULT_RATE,
        seed=SEED,
        hold=CLIENT_TIMEOUT + 0.5,
        faults=(*FAULTS, "refuse"),
    ) as proxy:
        rpc.call(*params, "emboux_mail.upstream_timeout", str(CLIENT_TIMEOUT))
        rpc.call(*params, "emboux_mail.upstream_url", proxy.url)
        try:
            for serial in range(OPERATIONS):
                try:
                    accepted[run.run_one()] += 1
                except RpcError as error:
                    refused[refusal_kind(error)] += 1
                tokens |= set(keys.values())
                if serial % 5 == 4:
                    # an operator retrying now and then keeps the backlog short
                    drain(rpc, sync_cron, 1)
            faults = dict(proxy.counts)
            proxy.rate = 0  # the link is healthy again: what waits goes out
            rounds = drain(rpc, sync_cron, 100)
            assert rounds is not None, "the outbox did not drain"
        finally:
            rpc.call(*params, "emboux_mail.upstream_url", b.base_url)
            rpc.call(*params, "emboux_mail.upstream_timeout", "")
    events = Counter(
        e["state"]
        for e in rpc.call("emboux.mail.sync.event", "search_read", [], fields=["state"])
    )
    print(
        f"\nfault injection: {OPERATIONS} saves, accepted {dict(accepted)}, "
        f"not accepted {dict(refused)}; link {faults}; drained in {rounds} rounds; "
        f"outbox {dict(events)}"
    )
    # before any reconcile: the same objects, field by field
    mine, theirs = hosting_state(rpc), hosting_state(Upstream(b, b_server, cluster).rpc)
    for kind in ("domains", "mailboxes", "aliases", "keys"):
        fields = sum(map(field_count, mine[kind].values()))
        print(f"{kind}: A {len(mine[kind])}, B {len(theirs[kind])}, {fields} fields")
        different = {
            name: (mine[kind].get(name), theirs[kind].get(name))
            for name in mine[kind].keys() | theirs[kind].keys()
            if mine[kind].get(name) != theirs[kind].get(name)
        }
        assert not different, (
            f"{kind} differ: {different}; A's outbox: "
            f"{outbox_history(rpc, list(different)[:3])}"
        )
    assert events["pending"] == 0
    assert sum(faults[f] for f in (*FAULTS, "refuse")) > 0
    # the upstream refused changes, in a save or in a later delivery (the
    # refusals a save met itself are among the counts printed above)
    assert rpc.call(
        "emboux.mail.sync.event",
        "search_count",
        [("state", "=", "error"), ("last_error", "like", "Refused by the fault proxy")],
    )
    assert refused["refused here: invalid address"] > 0
    action = rpc.call("emboux.mail.reconcile", "action_reconcile")
    [report] = rpc.call(
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
    imported = sum(
        report[f"imported_{kind}"] for kind in ("domains", "mailboxes", "aliases")
    )
    print(
        f"reconcile: {imported} imported, {report['differences']} different, "
        f"{report['local_only']} only in A, {report['import_failures']} failed"
    )
    assert report["state"] == "done", report["report"]
    assert (imported, report["differences"], report["import_failures"]) == (0, 0, 0), (
        report["report"]
    )
    assert report["local_only"] == 0, report["report"]
    assert_tokens_secret(cluster, sorted(tokens), a_server, b_server)
