"""/aliases/ (§A.3.3, §B.2.5): create, catch-all, quota per destination,
list and delete."""

from .common import ALIAS_KEYS, EmbouxApiCase


class TestAliases(EmbouxApiCase):
    def setUp(self):
        super().setUp()
        self.domain = self.create_domain("mycompany.com")
        self.create_mailbox("hello@mycompany.com")

    def _post(self, source, destination, domain_name="mycompany.com", token=None):
        body = {
            "domain_name": domain_name,
            "source": source,
            "destination": destination,
        }
        return self.api("POST", "/aliases/", token=token or self.TOKEN_A, json=body)

    def test_create(self):
        response = self._post("Info@MyCompany.com", "Hello@MyCompany.com")
        alias = self.assertAnswer(response, 201, ALIAS_KEYS)
        self.assertEqual(
            {k: v for k, v in alias.items() if k not in ("id", "created_at")},
            {
                "domain_id": self.domain["id"],
                "source": "info@mycompany.com",
                "destination": "hello@mycompany.com",
            },
        )
        catch_all = self.assertAnswer(
            self._post("@mycompany.com", "someone@outside.example"), 201, ALIAS_KEYS
        )
        self.assertEqual(catch_all["source"], "@mycompany.com")
        record = self.env["emboux.mail.alias"].browse(catch_all["id"])
        self.assertTrue(record.is_catch_all)

    def test_create_errors(self):
        self.create_alias("info@mycompany.com", "hello@mycompany.com")
        for args, status, detail in (
            (("INFO@mycompany.com", "x@y.example"), 400, "Alias source already exists"),
            (
                ("a@none.example", "x@y.example", "none.example"),
                404,
                "Domain not found",
            ),
            (
                ("a@other.example", "x@y.example"),
                400,
                "Email does not belong to domain",
            ),
        ):
            with self.subTest(args=args):
                self.assertDetail(self._post(*args), status, detail)

    def test_alias_quota(self):
        """Plan A: two aliases may point at one destination, catch-all
        included; other destinations are counted apart."""
        self.create_alias("a@mycompany.com", "hello@mycompany.com")
        self.create_alias("@mycompany.com", "hello@mycompany.com")
        response = self._post("b@mycompany.com", "HELLO@mycompany.com")
        self.assertDetail(response, 403, "Alias quota exceeded: 2/2")
        self.assertFalse(
            self.env["emboux.mail.alias"].search([("source", "=", "b@mycompany.com")])
        )
        self.create_alias("b@mycompany.com", "other@mycompany.com")
        # tenant B's plan allows one
        self.create_domain("b.example", token=self.TOKEN_B)
        self.create_alias("x@b.example", "dest@outside.example", token=self.TOKEN_B)
        response = self._post(
            "y@b.example", "dest@outside.example", "b.example", self.TOKEN_B
        )
        self.assertDetail(response, 403, "Alias quota exceeded: 1/1")

    def test_list(self):
        other = self.create_domain("other.example")
        first = self.create_alias("a@mycompany.com", "hello@mycompany.com")
        second = self.create_alias("b@other.example", "hello@mycompany.com")
        third = self.create_alias("c@mycompany.com", "x@outside.example")
        items = self.assertList(self.as_a("GET", "/aliases/"), ALIAS_KEYS, total=3)
        self.assertEqual(
            [a["id"] for a in items], [third["id"], second["id"], first["id"]]
        )
        path = f"/aliases/?domain_id={self.domain['id']}"
        items = self.assertList(self.as_a("GET", path), ALIAS_KEYS, total=2)
        self.assertEqual([a["id"] for a in items], [third["id"], first["id"]])
        path = f"/aliases/?domain_id={other['id']}"
        items = self.assertList(self.as_a("GET", path), ALIAS_KEYS, total=1)
        self.assertEqual(items[0]["source"], "b@other.example")
        items = self.assertList(
            self.as_a("GET", "/aliases/?limit=1&offset=2"), ALIAS_KEYS, 3
        )
        self.assertEqual([a["id"] for a in items], [first["id"]])

    def test_delete(self):
        self.create_alias("info@mycompany.com", "hello@mycompany.com")
        self.create_alias("@mycompany.com", "hello@mycompany.com")
        self.assertEmpty204(self.as_a("DELETE", "/aliases/Info@MyCompany.com"))
        self.assertEmpty204(self.as_a("DELETE", "/aliases/@mycompany.com"))
        self.assertEqual(self.as_a("GET", "/aliases/").json(), [])
        self.assertDetail(
            self.as_a("DELETE", "/aliases/info@mycompany.com"), 404, "Alias not found"
        )
        self.assertEqual(len(self.as_a("GET", "/users/").json()), 1)

    def test_idn_source(self):
        self.create_domain("bücher.example")
        alias = self.create_alias("info@bücher.example", "hello@mycompany.com")
        self.assertEqual(alias["source"], "info@xn--bcher-kva.example")
        self.assertEmpty204(self.as_a("DELETE", "/aliases/INFO@Bücher.example"))
