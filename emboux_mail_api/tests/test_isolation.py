"""Tenant isolation (§B.2.2): another tenant's resource answers exactly
like a missing one, and is left untouched."""

from .common import ALIAS_KEYS, DOMAIN_ITEM_KEYS, MAILBOX_KEYS, EmbouxApiCase


class TestIsolation(EmbouxApiCase):
    def setUp(self):
        super().setUp()
        self.b_domain = self.create_domain("b.example", token=self.TOKEN_B)
        self.create_mailbox("box@b.example", token=self.TOKEN_B)
        self.create_alias("fwd@b.example", "box@b.example", token=self.TOKEN_B)
        self.create_domain("a.example", token=self.TOKEN_A)

    def _same_as_missing(self, method, theirs, missing, body=None, body_missing=None):
        """Tenant A gets the same answer for B's resource as for none."""
        with self.subTest(method=method, path=theirs):
            answer = self.as_a(method, theirs, json=body)
            expected = self.as_a(method, missing, json=body_missing or body)
            self.assertEqual(answer.status_code, 404, answer.text)
            self.assertEqual(
                (answer.status_code, answer.json()),
                (expected.status_code, expected.json()),
            )

    def test_domain_routes(self):
        for method, suffix in (
            ("DELETE", ""),
            ("POST", "/register-subdomain"),
            ("GET", "/dns-check"),
            ("PUT", "/suspend"),
            ("PUT", "/activate"),
        ):
            self._same_as_missing(
                method, f"/domains/b.example{suffix}", f"/domains/none.example{suffix}"
            )
        response = self.as_a("DELETE", "/domains/b.example")
        self.assertDetail(response, 404, "Domain not found")

    def test_mailbox_and_alias_routes(self):
        for method, suffix, body in (
            ("PUT", "", {"password": "Other-pass-1"}),
            ("DELETE", "", None),
            ("GET", "/quota", None),
            ("PUT", "/quota", {"quota_mb": 1}),
        ):
            self._same_as_missing(
                method,
                f"/users/box@b.example{suffix}",
                f"/users/none@a.example{suffix}",
                body,
            )
        self._same_as_missing(
            "DELETE", "/aliases/fwd@b.example", "/aliases/x@a.example"
        )
        self.assertDetail(
            self.as_a("DELETE", "/aliases/fwd@b.example"), 404, "Alias not found"
        )
        self.assertDetail(
            self.as_a("DELETE", "/users/box@b.example"), 404, "Mailbox not found"
        )

    def test_create_in_their_domain(self):
        self._same_as_missing(
            "POST",
            "/users/",
            "/users/",
            {"domain_name": "b.example", "email": "x@b.example", "password": "p"},
            {"domain_name": "none.example", "email": "x@none.example", "password": "p"},
        )
        self._same_as_missing(
            "POST",
            "/aliases/",
            "/aliases/",
            {
                "domain_name": "b.example",
                "source": "y@b.example",
                "destination": "z@x.org",
            },
            {
                "domain_name": "none.example",
                "source": "y@none.example",
                "destination": "z@x.org",
            },
        )

    def test_lists_are_scoped(self):
        b_id = self.b_domain["id"]
        for path, keys in (
            ("/domains/", DOMAIN_ITEM_KEYS),
            ("/users/", MAILBOX_KEYS),
            ("/aliases/", ALIAS_KEYS),
            (f"/users/?domain_id={b_id}", MAILBOX_KEYS),
            (f"/aliases/?domain_id={b_id}", ALIAS_KEYS),
        ):
            with self.subTest(path=path):
                mine = self.assertList(self.as_a("GET", path), keys)
                self.assertNotIn("b.example", str(mine))
                theirs = self.assertList(self.as_b("GET", path), keys, total=1)
                self.assertIn("b.example", str(theirs))

    def test_their_resources_untouched(self):
        self.test_domain_routes()
        self.test_mailbox_and_alias_routes()
        self.assertEqual(len(self.as_b("GET", "/users/").json()), 1)
        self.assertEqual(len(self.as_b("GET", "/aliases/").json()), 1)
        domain = self.env["emboux.mail.domain"].browse(self.b_domain["id"])
        self.assertFalse(domain.suspended)
        self.assertEqual(domain.mailbox_ids.quota_mb, 1024)
