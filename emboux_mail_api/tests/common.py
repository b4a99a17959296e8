"""Fixtures of the REST API tests.

Two tenants (``partner_42`` and ``partner_17``, the refs of the seed pages)
with plans and keys whose tokens the tests know, a master key stored in the
database, and the server's master token in ``EMBOUX_API_KEY`` (HttpCase
serves requests from this process, so patching ``os.environ`` reaches it).

``api()`` is the only way the tests talk to the server: it also checks that
no answer is a server error and that no secret leaks into any answer.
"""

import contextlib
import os
import re
from unittest.mock import patch

from odoo.sql_db import TestCursor
from odoo.tests import HttpCase, tagged
from odoo.tools.misc import Callbacks

from odoo.addons.base.tests.common import DISABLED_MAIL_CONTEXT
from odoo.addons.emboux_mail.tests.common import FakeDns

TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")
DOMAIN_KEYS = {"id", "name", "created_at"}
# GET /domains/ items: the seed's fields, then the domain's state
DOMAIN_ITEM_KEYS = DOMAIN_KEYS | {
    "verified",
    "suspended",
    "suspension_reason",
    "parent_domain",
    "is_wildcard",
}
MAILBOX_KEYS = {"id", "domain_id", "email", "quota_mb", "created_at"}
ALIAS_KEYS = {"id", "domain_id", "source", "destination", "created_at"}
API_KEY_KEYS = {
    "id",
    "token",
    "partner_ref",
    "domains_allowed",
    "domains_used",
    "mailboxes_per_domain",
    "aliases_per_mailbox",
    "active",
    "expires_at",
    "created_at",
    "last_used_at",
}
USAGE_KEYS = {
    "token",
    "partner_ref",
    "since",
    "requests",
    "by_route",
    "domains_used",
    "last_used_at",
    # what the key allows (a connected Odoo's reconcile compares them)
    "domains_allowed",
    "mailboxes_per_domain",
    "aliases_per_mailbox",
    "active",
    "expires_at",
}
JSON = {"Content-Type": "application/json"}


# the register-subdomain answer of the seed page's example
SEED_REGISTRATION = {
    "name": "client1.example.com",
    "verification_token": "",
    "dkim_tokens": [],
    "verified": True,
    "dns_records": [],
    "provider": "mailgun",
}


@tagged("post_install", "-at_install")
class EmbouxApiCase(FakeDns, HttpCase):
    """Base of every REST API test."""

    MASTER = "env-master-token-4f9c2a7e"
    DB_MASTER = "db-master-token-8b1d5e3c"
    TOKEN_A = "emb_partner42_key_7f2a9xP3"
    TOKEN_B = "emb_partner17_key_Q8m4Lr2w"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.startClassPatcher(patch.dict(os.environ, {"EMBOUX_API_KEY": cls.MASTER}))
        cls.env = cls.env(context=dict(cls.env.context, **DISABLED_MAIL_CONTEXT))
        Plan = cls.env["emboux.mail.plan"]
        cls.plan_a = Plan.create(
            {
                "name": "Plan A",
                "domains_allowed": 3,
                "mailboxes_per_domain": 2,
                "aliases_per_mailbox": 2,
                "quota_mb": 2048,
            }
        )
        cls.plan_b = Plan.create(
            {
                "name": "Plan B",
                "domains_allowed": 1,
                "mailboxes_per_domain": 1,
                "aliases_per_mailbox": 1,
                "quota_mb": 1024,
            }
        )
        cls.tenant_a = cls._tenant("Tenant 42", "partner_42", cls.plan_a)
        cls.tenant_b = cls._tenant("Tenant 17", "partner_17", cls.plan_b)
        Key = cls.env["emboux.mail.api.key"]
        cls.key_a = Key.create(
            {"name": "A", "partner_id": cls.tenant_a.id, "token": cls.TOKEN_A}
        )
        cls.key_b = Key.create(
            {"name": "B", "partner_id": cls.tenant_b.id, "token": cls.TOKEN_B}
        )
        cls.master_key = Key.create(
            {"name": "DB master", "is_master": True, "token": cls.DB_MASTER}
        )
        # the tests fail authentication on purpose many times from one
        # address: only the throttle's own tests keep the real limit
        cls.env["ir.config_parameter"].set_param(
            "emboux_mail_api.auth_failures_max", "1000"
        )

    @classmethod
    def _tenant(cls, name, ref, plan):
        return cls.env["res.partner"].create(
            {
                "name": name,
                "is_company": True,
                "emboux_partner_ref": ref,
                "emboux_plan_id": plan.id,
            }
        )

    def setUp(self):
        super().setUp()
        self.secrets = {self.MASTER, self.DB_MASTER, self.TOKEN_A, self.TOKEN_B}

    # -- the client --------------------------------------------------------------
    def api(self, method, path, token=None, json=None, data=None, headers=None):
        """Send one request; ``token`` sets a Bearer header."""
        headers = dict(headers or {})
        if token is not None:
            headers.setdefault("Authorization", f"Bearer {token}")
        response = self.opener.request(
            method,
            self.base_url() + path,
            json=json,
            data=data,
            headers=headers,
            timeout=60,
        )
        self.env.invalidate_all()
        self.assertLess(
            response.status_code, 500, f"{method} {path}: {response.text[:500]}"
        )
        self._assert_no_secret(path, json, response)
        return response

    def _assert_no_secret(self, path, body, response):
        """No token or password in an answer, except the key's own token that
        the /api-keys/ routes echo (the caller's own value)."""
        own = None
        if path.startswith("/api-keys/"):
            own = path.split("/")[2].split("?")[0] or None
            if isinstance(body, dict) and isinstance(body.get("token"), str):
                own = body["token"]
        for secret in self.secrets - {own}:
            self.assertNotIn(secret, response.text, f"secret leaked by {path}")

    def master(self, method, path, **kwargs):
        return self.api(method, path, token=self.MASTER, **kwargs)

    def as_a(self, method, path, **kwargs):
        return self.api(method, path, token=self.TOKEN_A, **kwargs)

    def as_b(self, method, path, **kwargs):
        return self.api(method, path, token=self.TOKEN_B, **kwargs)

    # -- fixtures through the API --------------------------------------------------
    def create_domain(self, name, token=None, partner_ref=None):
        body = {"name": name}
        if partner_ref:
            body["partner_ref"] = partner_ref
        response = self.api("POST", "/domains/", token=token or self.TOKEN_A, json=body)
        self.assertEqual(response.status_code, 201, response.text)
        return response.json()

    def create_mailbox(self, email, token=None, password="Secret-pass-1"):
        self.secrets.add(password)
        body = {
            "domain_name": email.split("@")[1],
            "email": email,
            "password": password,
        }
        response = self.api("POST", "/users/", token=token or self.TOKEN_A, json=body)
        self.assertEqual(response.status_code, 201, response.text)
        return response.json()

    def create_alias(self, source, destination, token=None):
        body = {
            "domain_name": source.split("@")[1],
            "source": source,
            "destination": destination,
        }
        response = self.api("POST", "/aliases/", token=token or self.TOKEN_A, json=body)
        self.assertEqual(response.status_code, 201, response.text)
        return response.json()

    def domains_used(self, token):
        response = self.master("GET", f"/api-keys/{token}/usage")
        self.assertEqual(response.status_code, 200, response.text)
        return response.json()["domains_used"]

    @contextlib.contextmanager
    def postcommit_hooks(self):
        """Run post-commit hooks as a real commit does: TestCursor.commit
        drops them (odoo/sql_db.py), so API usage logged after a successful
        request would otherwise never be written in HttpCase."""
        commit = TestCursor.commit

        def commit_then_run_hooks(cursor):
            hooks, cursor.postcommit = cursor.postcommit, Callbacks()
            commit(cursor)
            hooks.run()

        with patch.object(TestCursor, "commit", commit_then_run_hooks):
            yield

    # -- assertions ----------------------------------------------------------------
    def assertDetail(self, response, status, detail):
        """The answer is ``status`` with exactly ``{"detail": detail}``."""
        self.assertEqual(
            (response.status_code, response.json()), (status, {"detail": detail})
        )

    def assertInvalid(self, response, loc, kind=None):
        """A FastAPI-shaped 422 with an error at ``loc``."""
        self.assertEqual(response.status_code, 422, response.text)
        errors = response.json()["detail"]
        self.assertIsInstance(errors, list)
        for entry in errors:
            self.assertLessEqual({"loc", "msg", "type"}, set(entry))
        matching = [e for e in errors if e["loc"] == list(loc)]
        self.assertTrue(matching, f"no error at {loc}: {errors}")
        if kind:
            self.assertEqual(matching[0]["type"], kind)
        return matching[0]

    def assertObject(self, value, keys):
        """``value`` has exactly ``keys``, and well-formed timestamps."""
        self.assertIsInstance(value, dict)
        self.assertEqual(set(value), set(keys))
        for name in ("created_at", "expires_at", "last_used_at", "since"):
            if value.get(name) is not None:
                self.assertRegex(value[name], TIMESTAMP_RE)
        return value

    def assertAnswer(self, response, status, keys):
        """``status`` with one JSON object of exactly ``keys``."""
        self.assertEqual(response.status_code, status, response.text)
        return self.assertObject(response.json(), keys)

    def assertList(self, response, keys, total=None):
        """200 with a list of objects of ``keys`` and X-Total-Count."""
        self.assertEqual(response.status_code, 200, response.text)
        items = response.json()
        self.assertIsInstance(items, list)
        for item in items:
            self.assertObject(item, keys)
        if total is not None:
            self.assertEqual(response.headers.get("X-Total-Count"), str(total))
        return items

    def assertEmpty204(self, response):
        self.assertEqual(response.status_code, 204, response.text)
        self.assertEqual(response.content, b"")
