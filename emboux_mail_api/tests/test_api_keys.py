"""/api-keys/ (§A.3.4, §B.2.4): master-only key management and usage."""

from datetime import timedelta

from ..models.emboux_mail_api_key import STAMP_EVERY
from .common import API_KEY_KEYS, USAGE_KEYS, EmbouxApiCase


class TestApiKeys(EmbouxApiCase):
    NEW = "emb_k7f2a9xP3mN_new_key_01"

    def setUp(self):
        super().setUp()
        self.secrets.add(self.NEW)

    def _create(self, **values):
        body = {"token": self.NEW, "partner_ref": "partner_new", **values}
        return self.master("POST", "/api-keys/", json=body)

    def test_a_busy_key_stamps_its_last_use_once_a_minute(self):
        """Every request is counted; ``last_used_at`` is written again only
        once the stamp is a minute old."""
        key = self.env["emboux.mail.api.key"]._emboux_find_by_token(self.TOKEN_A)
        Usage = self.env["emboux.mail.api.usage"].sudo()
        before = Usage.search_count([("key_id", "=", key.id)])
        with self.postcommit_hooks():
            self.as_a("GET", "/domains/")
            self.env.invalidate_all()
            first = key.last_used_at
            self.assertTrue(first)
            self.assertFalse(key._emboux_stamp_due())
            self.as_a("GET", "/domains/")
            self.env.invalidate_all()
            self.assertEqual(key.last_used_at, first)
            key.last_used_at = first - timedelta(seconds=STAMP_EVERY + 1)
            self.assertTrue(key._emboux_stamp_due())
            self.env.cr.flush()
            self.as_a("GET", "/domains/")
            self.env.invalidate_all()
            self.assertGreaterEqual(key.last_used_at, first)
        self.assertEqual(Usage.search_count([("key_id", "=", key.id)]), before + 3)

    def test_create_full(self):
        response = self._create(
            domains_allowed=10,
            mailboxes_per_domain=5,
            aliases_per_mailbox=20,
            active=True,
            expires_at="2036-12-31T23:59:59",
        )
        key = self.assertAnswer(response, 201, API_KEY_KEYS)
        self.assertIsInstance(key.pop("id"), int)
        self.assertIsInstance(key.pop("created_at"), str)
        self.assertEqual(
            key,
            {
                "token": self.NEW,
                "partner_ref": "partner_new",
                "domains_allowed": 10,
                "domains_used": 0,
                "mailboxes_per_domain": 5,
                "aliases_per_mailbox": 20,
                "active": True,
                "expires_at": "2036-12-31T23:59:59",
                "last_used_at": None,
            },
        )
        self.create_domain("new.example", token=self.NEW)
        self.assertEqual(self.domains_used(self.NEW), 1)
        # the token is stored hashed only
        self.env.cr.execute(
            "SELECT token_hash FROM emboux_mail_api_key WHERE id = %s",
            [response.json()["id"]],
        )
        self.assertNotIn(self.NEW, self.env.cr.fetchone()[0])

    def test_create_defaults(self):
        """Quotas default to 0/1/5 (§A.3.4) for a tenant without plan, and
        to the plan's for a known tenant."""
        key = self.assertAnswer(self._create(), 201, API_KEY_KEYS)
        self.assertEqual(
            (
                key["domains_allowed"],
                key["mailboxes_per_domain"],
                key["aliases_per_mailbox"],
            ),
            (0, 1, 5),
        )
        self.assertEqual((key["active"], key["expires_at"]), (True, None))
        second = "emb_partner42_second_key_1"
        self.secrets.add(second)
        response = self.master(
            "POST", "/api-keys/", json={"token": second, "partner_ref": "partner_42"}
        )
        key = self.assertAnswer(response, 201, API_KEY_KEYS)
        self.assertEqual((key["domains_allowed"], key["mailboxes_per_domain"]), (3, 2))
        # keys of one tenant see the same resources and counter
        self.create_domain("shared.example", token=self.TOKEN_A)
        self.assertEqual(len(self.api("GET", "/domains/", token=second).json()), 1)
        self.assertEqual(self.domains_used(second), 1)

    def test_create_duplicate_rolls_back(self):
        """The duplicate is found after the tenant was created: nothing of
        the request remains."""
        body = {"token": self.TOKEN_A, "partner_ref": "partner_dup"}
        response = self.master("POST", "/api-keys/", json=body)
        self.assertDetail(response, 400, "API key already exists")
        Partner = self.env["res.partner"].with_context(active_test=False)
        self.assertFalse(Partner.search([("emboux_partner_ref", "=", "partner_dup")]))
        self.assertEqual(self.api("GET", "/domains/", self.TOKEN_A).status_code, 200)

    def test_update(self):
        self._create()
        path = f"/api-keys/{self.NEW}"
        response = self.master(
            "PUT", path, json={"domains_allowed": 20, "active": True}
        )
        key = self.assertAnswer(response, 200, API_KEY_KEYS)
        self.assertEqual((key["token"], key["domains_allowed"]), (self.NEW, 20))
        self.assertEqual(
            (key["mailboxes_per_domain"], key["aliases_per_mailbox"]), (1, 5)
        )
        key = self.master(
            "PUT", path, json={"expires_at": "2030-01-01T00:00:00Z"}
        ).json()
        self.assertEqual(key["expires_at"], "2030-01-01T00:00:00")
        key = self.master("PUT", path, json={"expires_at": None}).json()
        self.assertIsNone(key["expires_at"])
        self.assertEqual(key["domains_allowed"], 20)

        key = self.master("PUT", path, json={"active": False}).json()
        self.assertFalse(key["active"])
        self.assertDetail(
            self.api("GET", "/domains/", self.NEW), 403, "API key is deactivated"
        )
        self.master("PUT", path, json={"active": True})
        self.assertEqual(self.api("GET", "/domains/", self.NEW).status_code, 200)
        self.master("PUT", path, json={"expires_at": "2001-01-01T00:00:00"})
        self.assertDetail(
            self.api("GET", "/domains/", self.NEW), 403, "API key has expired"
        )
        self.assertDetail(
            self.master("PUT", "/api-keys/emb_no_such_key_000001", json={}),
            404,
            "API key not found",
        )

    def test_delete(self):
        self._create()
        domain = self.create_domain("kept.example", token=self.NEW)
        self.assertEmpty204(self.api("DELETE", f"/api-keys/{self.NEW}", self.DB_MASTER))
        self.assertDetail(
            self.api("GET", "/domains/", self.NEW), 403, "Invalid API key"
        )
        self.assertTrue(self.env["emboux.mail.domain"].browse(domain["id"]).exists())
        for method in ("DELETE", "PUT"):
            self.assertDetail(
                self.master(
                    method,
                    f"/api-keys/{self.NEW}",
                    json={} if method == "PUT" else None,
                ),
                404,
                "API key not found",
            )

    def test_usage(self):
        """Requests are logged after their transaction (post-commit for a
        success, post-rollback for a refusal); see postcommit_hooks."""
        with self.postcommit_hooks():
            self.create_domain("used.example")
            self.as_a("GET", "/domains/")
            self.as_a("GET", "/domains/?limit=1")
            self.assertEqual(
                self.as_a("DELETE", "/domains/none.example").status_code, 404
            )
            self.master("GET", "/domains/")  # the env token has no key to count
        response = self.master("GET", f"/api-keys/{self.TOKEN_A}/usage")
        usage = self.assertAnswer(response, 200, USAGE_KEYS)
        self.assertEqual(
            usage["by_route"],
            {
                "POST /domains/": 1,
                "GET /domains/": 2,
                "DELETE /domains/{domain_name}": 1,
            },
        )
        self.assertEqual(
            (usage["token"], usage["partner_ref"], usage["requests"]),
            (self.TOKEN_A, "partner_42", 4),
        )
        self.assertEqual((usage["domains_used"], usage["since"]), (1, None))
        self.assertIsNotNone(usage["last_used_at"])
        since = "2999-01-01T00:00:00"
        usage = self.master(
            "GET", f"/api-keys/{self.TOKEN_A}/usage?since={since}"
        ).json()
        self.assertEqual((usage["requests"], usage["by_route"]), (0, {}))
        self.assertEqual(usage["since"], since)
        usage = self.master(
            "GET", f"/api-keys/{self.TOKEN_A}/usage?since=2000-01-01"
        ).json()
        self.assertEqual(
            (usage["requests"], usage["since"]), (4, "2000-01-01T00:00:00")
        )
        self.assertDetail(
            self.master("GET", "/api-keys/emb_no_such_key_000001/usage"),
            404,
            "API key not found",
        )

    def test_usage_refusals_without_hooks(self):
        """Without patching, a refused request is still logged: TestCursor
        runs post-rollback hooks; only post-commit ones are dropped."""
        self.assertEqual(self.as_b("DELETE", "/domains/none.example").status_code, 404)
        usage = self.master("GET", f"/api-keys/{self.TOKEN_B}/usage").json()
        self.assertEqual(usage["by_route"], {"DELETE /domains/{domain_name}": 1})
