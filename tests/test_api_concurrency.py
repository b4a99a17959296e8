"""Quotas and uniqueness of the REST API under 20 parallel requests, each
in its own transaction on a real server."""

import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

from api_client import Api

PARALLEL = 20


def _race(demo_server, token, method, path, body_for):
    clients = [Api(demo_server.url, token) for _ in range(PARALLEL)]
    barrier = threading.Barrier(PARALLEL)

    def call(index):
        barrier.wait()
        response = clients[index](method, path, json=body_for(index))
        return response.status_code, response.json()

    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(call, range(PARALLEL)))


def _tenant(demo_server, ref, **quotas):
    master = Api(demo_server.url, demo_server.master_token)
    token = f"emb_{ref}_{secrets.token_urlsafe(16)}"
    body = {"token": token, "partner_ref": ref, **quotas}
    master.ok("POST", "/api-keys/", body, 201)
    return token


def test_parallel_users_stop_at_quota(demo_server):
    token = _tenant(demo_server, "race_users", mailboxes_per_domain=5)
    Api(demo_server.url, token).ok(
        "POST", "/domains/", {"name": "race-api.example"}, 201
    )
    results = _race(
        demo_server,
        token,
        "POST",
        "/users/",
        lambda i: {
            "domain_name": "race-api.example",
            "email": f"u{i}@race-api.example",
            "password": "pw-1234567890",
        },
    )
    statuses = sorted(status for status, _body in results)
    created, refused = statuses.count(201), statuses.count(403)
    print(f"POST /users/ x{PARALLEL}: {created} created, {refused} refused")
    assert statuses == [201] * 5 + [403] * 15
    assert all(
        body == {"detail": "Mailbox quota exceeded for this domain"}
        for status, body in results
        if status == 403
    )
    listed = Api(demo_server.url, token)("GET", "/users/")
    assert listed.headers["X-Total-Count"] == "5"


def test_parallel_same_domain_created_once(demo_server):
    token = _tenant(demo_server, "race_domains", domains_allowed=0)
    results = _race(
        demo_server, token, "POST", "/domains/", lambda i: {"name": "race-same.example"}
    )
    statuses = sorted(status for status, _body in results)
    created, refused = statuses.count(201), statuses.count(400)
    print(f"POST /domains/ x{PARALLEL}: {created} created, {refused} refused")
    assert statuses == [201] + [400] * 19
    assert all(
        body == {"detail": "Domain already exists"}
        for status, body in results
        if status == 400
    )
