"""Fuzz the REST API against its own ``/openapi.json`` with schemathesis,
as the master and as a customer, on a server of its own (the fuzzer writes).

The document is meant to be exactly true, so the step fails on any 5xx,
any answer it does not describe (status, content type, headers, body), any
request it calls valid that the server refuses as invalid (422), and any
request it calls invalid that the server accepts. Generation is
deterministic, so a failure is the same failure on every run.

The counts printed are those of the fuzzer's own report (one HAR entry per
request sent), never figures written here.
"""

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from api_client import Api
from rpc import OdooRpc

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
MASTER_TOKEN = "emb_fuzz_master_5Rk2pWq8ZtL3"
CUSTOMER_TOKEN = "emb_fuzz_customer_Hq7Nv3Xs9Ld2"
CUSTOMER_REF = "fuzz_customer"
PASSWORD = "Fuzz-pass-7Kq2mZ"
MIN_REQUESTS = 1000
TIMEOUT = 300  # seconds per role
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
)
# a valid request may still be refused: a rule of data (400), of rights or
# quotas (403), of existence (404); never as invalid (422)
ACCEPTED = ["2xx", "400", "403", "404"]
# a password must not contain the mailbox's local part: a rule between two
# fields, which a schema cannot state (the document says it in words)
PASSWORD_RULE = [*ACCEPTED, "422"]


def _create(api, path, body):
    api.ok("POST", path, body, 201)


def _resources(api, prefix, owner=None):
    """What the fuzzed routes address, made beforehand so that they answer
    more than 404; a DELETE addresses its own (``gone``) resources."""
    domain = f"{prefix}.example"
    gone = f"{prefix}-gone.example"
    for name in (domain, gone):
        _create(api, "/domains/", {"name": name, "partner_ref": owner})
    for local in ("box", "gone"):
        body = {"domain_name": domain, "email": f"{local}@{domain}"}
        _create(api, "/users/", {**body, "password": PASSWORD})
    for local in ("alias", "gone-alias"):
        body = {"domain_name": domain, "destination": f"box@{domain}"}
        _create(api, "/aliases/", {**body, "source": f"{local}@{domain}"})
    return {
        "domain_name": domain,
        "email": f"box@{domain}",
        "source": f"alias@{domain}",
        "gone": {
            "domain_name": gone,
            "email": f"gone@{domain}",
            "source": f"gone-alias@{domain}",
        },
    }


def _key(master, token, partner_ref):
    """A tenant's key whose quotas the fuzzer's fixtures stay within."""
    quotas = {"mailboxes_per_domain": 1000, "aliases_per_mailbox": 1000}
    body = {"token": token, "partner_ref": partner_ref, **quotas}
    _create(master, "/api-keys/", body)


def _master_resources(master):
    """The master's own fixtures (a tenant's domains), and a key and a
    webhook to fuzz."""
    for token in ("emb_fuzz_key_Zp4Wq8Rt2Lm6", "emb_fuzz_gone_Bn5Xc7Vj3Hk9"):
        _key(master, token, "fuzz_other")
    params = _resources(master, "fuzz-master", "fuzz_other")
    hooks = [
        master.ok(
            "POST",
            "/webhooks/",
            {"url": "http://127.0.0.1:9/hook", "events": ["mailbox.created"]},
            201,
        )["id"]
        for _index in range(2)
    ]
    params["token"] = "emb_fuzz_key_Zp4Wq8Rt2Lm6"
    params["webhook_id"] = str(hooks[0])
    params["gone"].update(token="emb_fuzz_gone_Bn5Xc7Vj3Hk9", webhook_id=str(hooks[1]))
    return params


def _toml(value):
    """A TOML value (JSON's string and array spellings are TOML's too)."""
    return json.dumps(value)


def _config(params):
    """schemathesis.toml: fixed path parameters (the DELETEs' own), and the
    statuses a valid request may get."""
    gone = params.pop("gone")
    lines = [
        "[parameters]",
        *(f"{_toml(name)} = {_toml(value)}" for name, value in params.items()),
        "[checks.positive_data_acceptance]",
        f"expected-statuses = {_toml(ACCEPTED)}",
        "[[operations]]",
        'include-method = "DELETE"',
        "[operations.parameters]",
        *(f"{_toml(name)} = {_toml(value)}" for name, value in gone.items()),
    ]
    for method, path in (("POST", "/users/"), ("PUT", "/users/{email}")):
        lines += [
            "[[operations]]",
            f"include-method = {_toml(method)}",
            f"include-path = {_toml(path)}",
            "[operations.checks.positive_data_acceptance]",
            f"expected-statuses = {_toml(PASSWORD_RULE)}",
        ]
    return "\n".join(lines) + "\n"


def _fuzz(url, token, params, workdir):
    """Run schemathesis as ``token``; (requests sent, failures, output)."""
    workdir.mkdir()
    config = workdir / "schemathesis.toml"
    config.write_text(_config(params))
    har, junit = workdir / "requests.har", workdir / "junit.xml"
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "40",
        "--generation-deterministic",
        "--generation-with-security-parameters",
        "false",
        "--workers",
        "1",
        "--continue-on-failure",
        "--request-timeout",
        "60",
        "--report",
        "har,junit",
        "--report-har-path",
        str(har),
        "--report-junit-path",
        str(junit),
        "--no-color",
    ]
    run = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=workdir,
        check=False,
    )
    output = run.stdout + run.stderr
    assert har.exists() and junit.exists(), output[-5000:]
    requests = len(json.loads(har.read_text())["log"]["entries"])
    suites = ET.parse(junit).getroot().iter("testsuite")
    failures = sum(
        int(suite.get("failures", 0)) + int(suite.get("errors", 0)) for suite in suites
    )
    if run.returncode and not failures:
        failures = 1  # the run itself failed: its output says why
    return requests, failures, output


@pytest.fixture(scope="module")
def fuzz_server(run_server):
    """A server of its own, where webhooks may point at this machine and
    the fuzzer's many requests are never throttled."""
    server = run_server("fuzz", env={"EMBOUX_API_KEY": MASTER_TOKEN})
    rpc = OdooRpc(server.url, server.db)
    for key, value in (
        ("emboux_mail.webhook_allow_private", "1"),
        ("emboux_mail_api.auth_failures_max", "1000000"),
    ):
        rpc.call("ir.config_parameter", "set_param", key, value)
    return server


def _report(role, requests, failures, output):
    print(f"fuzz as {role}: {requests} requests, {failures} failures")
    assert failures == 0, output[-20000:]
    assert requests >= MIN_REQUESTS, output[-5000:]


def test_fuzz_as_master(fuzz_server, tmp_path):
    master = Api(fuzz_server.url, MASTER_TOKEN)
    params = _master_resources(master)
    _report("master", *_fuzz(fuzz_server.url, MASTER_TOKEN, params, tmp_path / "m"))


def test_fuzz_as_customer(fuzz_server, tmp_path):
    _key(Api(fuzz_server.url, MASTER_TOKEN), CUSTOMER_TOKEN, CUSTOMER_REF)
    customer = Api(fuzz_server.url, CUSTOMER_TOKEN)
    params = _resources(customer, "fuzz-customer")
    # the master-only routes answer 403 whatever they address
    params.update(token=CUSTOMER_TOKEN, webhook_id="1")
    params["gone"].update(token=CUSTOMER_TOKEN, webhook_id="1")
    _report("customer", *_fuzz(fuzz_server.url, CUSTOMER_TOKEN, params, tmp_path / "c"))
