"""The REST API of a real ``./setup/run`` server, scenario by scenario,
over HTTP with a master token from ``EMBOUX_API_KEY``."""

import re
import secrets

from api_client import Api

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")


def _detail(response):
    return response.json()["detail"]


def _tenant(master, demo_server, ref, **quotas):
    token = f"emb_{ref}_{secrets.token_urlsafe(16)}"
    key = master.ok(
        "POST", "/api-keys/", {"token": token, "partner_ref": ref, **quotas}, 201
    )
    assert key["token"] == token and key["partner_ref"] == ref
    assert key["domains_used"] == 0 and key["last_used_at"] is None
    return Api(demo_server.url, token), token


def test_full_scenario(master, demo_server):
    alpha, alpha_token = _tenant(
        master,
        demo_server,
        "e2e_alpha",
        domains_allowed=2,
        mailboxes_per_domain=2,
        aliases_per_mailbox=1,
    )
    beta, beta_token = _tenant(master, demo_server, "e2e_beta", domains_allowed=0)

    # domains, lower-cased, with the quota of alpha's key
    first = alpha.ok("POST", "/domains/", {"name": "Alpha-One.example"}, 201)
    assert first["name"] == "alpha-one.example" and STAMP.match(first["created_at"])
    alpha.ok("POST", "/domains/", {"name": "alpha-two.example"}, 201)
    refused = alpha("POST", "/domains/", json={"name": "alpha-three.example"})
    assert (refused.status_code, _detail(refused)) == (
        403,
        "Domain quota exceeded: 2/2",
    )
    duplicate = beta("POST", "/domains/", json={"name": "ALPHA-ONE.example"})
    assert (duplicate.status_code, _detail(duplicate)) == (400, "Domain already exists")
    beta.ok("POST", "/domains/", {"name": "beta.example"}, 201)

    # isolation: lists and every item route see only the tenant's own
    listed = alpha("GET", "/domains/")
    assert [d["name"] for d in listed.json()] == [
        "alpha-two.example",
        "alpha-one.example",
    ]
    assert listed.headers["X-Total-Count"] == "2"
    for method, path in [
        ("DELETE", "/domains/beta.example"),
        ("PUT", "/domains/beta.example/suspend"),
        ("GET", "/domains/beta.example/dns-check"),
    ]:
        hidden = alpha(method, path)
        assert (hidden.status_code, _detail(hidden)) == (404, "Domain not found")
    names = {d["name"] for d in master.ok("GET", "/domains/")}
    assert {"alpha-one.example", "alpha-two.example", "beta.example"} <= names

    # mailboxes and their quota, aliases and theirs
    box = alpha.ok(
        "POST",
        "/users/",
        {
            "domain_name": "alpha-one.example",
            "email": "Ann@Alpha-One.example",
            "password": "pw-one-secret-1",
        },
        201,
    )
    assert box["email"] == "ann@alpha-one.example" and box["domain_id"] == first["id"]
    alpha.ok(
        "POST",
        "/users/",
        {
            "domain_name": "alpha-one.example",
            "email": "bob@alpha-one.example",
            "password": "pw-two-secret-2",
        },
        201,
    )
    full = alpha(
        "POST",
        "/users/",
        json={
            "domain_name": "alpha-one.example",
            "email": "cy@alpha-one.example",
            "password": "pw-three-secret-3",
        },
    )
    assert (full.status_code, _detail(full)) == (
        403,
        "Mailbox quota exceeded for this domain",
    )
    assert len(alpha.ok("GET", f"/users/?domain_id={first['id']}")) == 2
    assert alpha.ok("GET", f"/users/?domain_id={first['id']}&limit=1&offset=1")[0][
        "email"
    ] == ("ann@alpha-one.example")
    stolen = beta("PUT", "/users/ann@alpha-one.example", json={"password": "x"})
    assert (stolen.status_code, _detail(stolen)) == (404, "Mailbox not found")
    changed = alpha.ok(
        "PUT", "/users/ann@alpha-one.example", {"password": "pw-new-secret"}
    )
    assert changed == {"message": "Contraseña actualizada correctamente"}
    alias = alpha.ok(
        "POST",
        "/aliases/",
        {
            "domain_name": "alpha-one.example",
            "source": "@alpha-one.example",
            "destination": "ann@alpha-one.example",
        },
        201,
    )
    assert alias["source"] == "@alpha-one.example"
    over = alpha(
        "POST",
        "/aliases/",
        json={
            "domain_name": "alpha-one.example",
            "source": "info@alpha-one.example",
            "destination": "ann@alpha-one.example",
        },
    )
    assert (over.status_code, _detail(over)) == (403, "Alias quota exceeded: 1/1")

    # suspend and activate
    suspended = alpha.ok("PUT", "/domains/alpha-one.example/suspend")
    assert suspended == {
        "name": "alpha-one.example",
        "suspended": True,
        "message": "Domain suspended",
    }
    activated = alpha.ok("PUT", "/domains/alpha-one.example/activate")
    assert (
        activated["suspended"] is False and activated["message"] == "Domain activated"
    )

    # owner transfer moves the counters on both tenants' keys
    refused = alpha(
        "PUT", "/domains/alpha-two.example/owner", json={"partner_ref": "e2e_beta"}
    )
    assert (refused.status_code, _detail(refused)) == (403, "Master token required")
    nobody = master(
        "PUT", "/domains/alpha-two.example/owner", json={"partner_ref": "e2e_nobody"}
    )
    assert (nobody.status_code, _detail(nobody)) == (
        400,
        "No active api_key for partner_ref=e2e_nobody",
    )
    moved = master.ok(
        "PUT", "/domains/alpha-two.example/owner", {"partner_ref": "e2e_beta"}
    )
    assert moved == {
        "name": "alpha-two.example",
        "partner_ref": "e2e_beta",
        "previous_partner_ref": "e2e_alpha",
    }
    used = [
        master.ok("GET", f"/api-keys/{token}/usage")["domains_used"]
        for token in (alpha_token, beta_token)
    ]
    assert used == [1, 2]
    orphan = master.ok("PUT", "/domains/alpha-two.example/owner", {"partner_ref": None})
    assert (
        orphan["partner_ref"] is None and orphan["previous_partner_ref"] == "e2e_beta"
    )
    # alpha has room again for a second domain
    alpha.ok("POST", "/domains/", {"name": "alpha-three.example"}, 201)

    # delete cascades to mailboxes and aliases; the counter follows
    alpha.ok("DELETE", "/domains/alpha-one.example", status=204)
    assert alpha.ok("GET", "/users/") == []
    assert alpha.ok("GET", "/aliases/") == []
    gone = alpha("DELETE", "/users/ann@alpha-one.example")
    assert (gone.status_code, _detail(gone)) == (404, "Mailbox not found")
    usage = master.ok("GET", f"/api-keys/{alpha_token}/usage")
    assert usage["domains_used"] == 1
    assert STAMP.match(usage["last_used_at"])
    assert usage["requests"] >= 20 and usage["by_route"]["POST /domains/"] == 4

    # revoking the key locks the tenant out
    master.ok("PUT", f"/api-keys/{alpha_token}", {"active": False})
    locked = alpha("GET", "/domains/")
    assert (locked.status_code, _detail(locked)) == (403, "API key is deactivated")


def test_auth_failures(master, demo_server):
    anonymous = Api(demo_server.url, "x")
    del anonymous.session.headers["Authorization"]
    for headers, detail in [
        ({}, "Invalid authorization header format"),
        ({"Authorization": "Token abc"}, "Invalid authorization header format"),
        ({"Authorization": "Bearer not-a-key-at-all"}, "Invalid API key"),
    ]:
        response = anonymous("GET", "/domains/", headers=headers)
        assert (response.status_code, _detail(response)) == (403, detail)
    customer, _key = _tenant(master, demo_server, "e2e_auth")
    response = customer(
        "POST", "/api-keys/", json={"token": "t" * 20, "partner_ref": "x"}
    )
    assert (response.status_code, _detail(response)) == (403, "Master token required")
    expired_token = "emb_expired_" + secrets.token_urlsafe(12)
    master.ok(
        "POST",
        "/api-keys/",
        {
            "token": expired_token,
            "partner_ref": "e2e_auth",
            "expires_at": "2000-01-01T00:00:00",
        },
        201,
    )
    response = Api(demo_server.url, expired_token)("GET", "/domains/")
    assert (response.status_code, _detail(response)) == (403, "API key has expired")


def test_openapi_lists_master_routes(demo_server):
    document = Api(demo_server.url, "none")("GET", "/openapi.json").json()
    master_only = {
        (path, method)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if operation.get("x-required-role") == "master"
    }
    assert master_only == {
        ("/domains/{domain_name}/parent", "put"),
        ("/domains/{domain_name}/owner", "put"),
        ("/domains/{domain_name}/outbound/increment", "post"),
        ("/domains/{domain_name}/transfer", "put"),
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
