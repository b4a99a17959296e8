"""Authentication and roles (§A.2, §B.2.1): every failure is a 403 with its
exact text, on a customer route and on a master-only route alike."""

import datetime
import os
from unittest.mock import patch

from .common import EmbouxApiCase

CUSTOMER_ROUTE = ("GET", "/domains/")
MASTER_ROUTE = ("GET", f"/api-keys/{EmbouxApiCase.TOKEN_A}/usage")
BAD_FORMAT = "Invalid authorization header format"


class TestAuth(EmbouxApiCase):
    REVOKED = "emb_revoked_key_0000000001"
    EXPIRED = "emb_expired_key_0000000001"
    UNKNOWN = "emb_unknown_key_0000000001"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Key = cls.env["emboux.mail.api.key"]
        past = datetime.datetime.now() - datetime.timedelta(days=1)
        Key.create(
            {
                "partner_id": cls.tenant_a.id,
                "token": cls.REVOKED,
                "active": False,
            }
        )
        Key.create(
            {"partner_id": cls.tenant_a.id, "token": cls.EXPIRED, "expires_at": past}
        )

    def setUp(self):
        super().setUp()
        self.secrets |= {self.REVOKED, self.EXPIRED, self.UNKNOWN}

    def _both_routes(self, headers, detail):
        for method, path in (CUSTOMER_ROUTE, MASTER_ROUTE):
            with self.subTest(path=path, headers=headers):
                response = self.api(method, path, headers=headers)
                self.assertDetail(response, 403, detail)

    def test_missing_or_malformed_header(self):
        self._both_routes({}, BAD_FORMAT)
        for value in ("Token x", "Bearer", "Bearer ", f"Basic {self.TOKEN_A}"):
            self._both_routes({"Authorization": value}, BAD_FORMAT)
        # a token without its scheme is malformed, not unknown
        self._both_routes({"Authorization": self.TOKEN_A}, BAD_FORMAT)

    def test_unknown_deactivated_expired(self):
        for token, detail in (
            (self.UNKNOWN, "Invalid API key"),
            (self.REVOKED, "API key is deactivated"),
            (self.EXPIRED, "API key has expired"),
        ):
            self._both_routes({"Authorization": f"Bearer {token}"}, detail)

    def test_customer_token_on_master_routes(self):
        for method, path, body in (
            ("PUT", "/domains/x.example/parent", {"is_wildcard": True}),
            ("PUT", "/domains/x.example/owner", {"partner_ref": None}),
            ("POST", "/api-keys/", {"token": "x" * 20, "partner_ref": "p"}),
            ("PUT", f"/api-keys/{self.TOKEN_A}", {"active": False}),
            ("DELETE", f"/api-keys/{self.TOKEN_A}", None),
            MASTER_ROUTE + (None,),
        ):
            with self.subTest(method=method, path=path):
                response = self.as_a(method, path, json=body)
                self.assertDetail(response, 403, "Master token required")
        self.key_a.invalidate_recordset()
        self.assertTrue(self.key_a.active, "the refused PUT changed nothing")

    def test_master_tokens(self):
        """The server's EMBOUX_API_KEY and a key flagged is_master both act
        as master; a revoked master key does not."""
        for token in (self.MASTER, self.DB_MASTER):
            with self.subTest(token=token):
                self.assertEqual(self.api(*MASTER_ROUTE, token=token).status_code, 200)
                self.assertEqual(
                    self.api(*CUSTOMER_ROUTE, token=token).status_code, 200
                )
        self.master_key.active = False
        self.assertDetail(
            self.api(*MASTER_ROUTE, token=self.DB_MASTER),
            403,
            "API key is deactivated",
        )

    def test_env_master_token_only_when_set(self):
        with patch.dict(os.environ):
            del os.environ["EMBOUX_API_KEY"]
            response = self.api(*MASTER_ROUTE, token=self.MASTER)
            self.assertDetail(response, 403, "Invalid API key")
        with patch.dict(os.environ, {"EMBOUX_API_KEY": ""}):
            response = self.api(*MASTER_ROUTE, headers={"Authorization": "Bearer "})
            self.assertDetail(response, 403, BAD_FORMAT)

    def test_master_sees_every_tenant(self):
        a = self.create_domain("a-only.example", token=self.TOKEN_A)
        b = self.create_domain("b-only.example", token=self.TOKEN_B)
        for token, expected in (
            (self.TOKEN_A, {a["id"]}),
            (self.TOKEN_B, {b["id"]}),
            (self.MASTER, {a["id"], b["id"]}),
            (self.DB_MASTER, {a["id"], b["id"]}),
        ):
            with self.subTest(token=token):
                ids = {
                    d["id"] for d in self.api("GET", "/domains/", token=token).json()
                }
                self.assertEqual(ids, expected)
