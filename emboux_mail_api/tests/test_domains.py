"""POST/GET/DELETE /domains/ (§B.1): bodies, quotas, lists, cascade."""

from odoo.addons.emboux_mail.services.stamps import stamp

from .common import (
    ALIAS_KEYS,
    DOMAIN_ITEM_KEYS,
    DOMAIN_KEYS,
    MAILBOX_KEYS,
    EmbouxApiCase,
)


class TestDomains(EmbouxApiCase):
    def test_create(self):
        response = self.as_a("POST", "/domains/", json={"name": " MyCompany.COM. "})
        domain = self.assertAnswer(response, 201, DOMAIN_KEYS)
        self.assertEqual(domain["name"], "mycompany.com")
        self.assertIsInstance(domain["id"], int)
        record = self.env["emboux.mail.domain"].browse(domain["id"])
        self.assertEqual(record.partner_id, self.tenant_a)
        self.assertEqual(self.domains_used(self.TOKEN_A), 1)

    def test_create_duplicate(self):
        self.create_domain("dup.example")
        for name, token in (
            ("dup.example", self.TOKEN_A),
            ("DUP.example", self.TOKEN_B),
        ):
            with self.subTest(name=name):
                response = self.api("POST", "/domains/", token, json={"name": name})
                self.assertDetail(response, 400, "Domain already exists")
        self.assertEqual(self.domains_used(self.TOKEN_B), 0)

    def test_domain_quota(self):
        for index in range(3):
            self.create_domain(f"d{index}.example")
        response = self.as_a("POST", "/domains/", json={"name": "d3.example"})
        self.assertDetail(response, 403, "Domain quota exceeded: 3/3")
        self.create_domain("b1.example", token=self.TOKEN_B)
        response = self.as_b("POST", "/domains/", json={"name": "b2.example"})
        self.assertDetail(response, 403, "Domain quota exceeded: 1/1")
        self.assertFalse(
            self.env["emboux.mail.domain"].search([("name", "=", "b2.example")])
        )
        # a freed slot can be used again
        self.assertEmpty204(self.as_a("DELETE", "/domains/d0.example"))
        self.create_domain("d3.example")

    def test_partner_ref_master_only(self):
        """A customer's partner_ref is ignored; the master's assigns."""
        mine = self.create_domain("mine.example", partner_ref="partner_17")
        theirs = self.create_domain(
            "theirs.example", token=self.MASTER, partner_ref="partner_17"
        )
        orphan = self.create_domain("orphan.example", token=self.MASTER)
        self.assertEqual(
            [d["id"] for d in self.as_a("GET", "/domains/").json()], [mine["id"]]
        )
        self.assertEqual(
            [d["id"] for d in self.as_b("GET", "/domains/").json()], [theirs["id"]]
        )
        self.assertEqual(self.domains_used(self.TOKEN_B), 1)
        self.assertFalse(self.env["emboux.mail.domain"].browse(orphan["id"]).partner_id)
        new = self.create_domain("new.example", self.DB_MASTER, "partner_99")
        owner = self.env["emboux.mail.domain"].browse(new["id"]).partner_id
        self.assertEqual(owner.emboux_partner_ref, "partner_99")

    def test_list_newest_first_and_paging(self):
        created = [self.create_domain(f"l{i}.example")["id"] for i in range(3)]
        newest_first = created[::-1]
        items = self.assertList(
            self.as_a("GET", "/domains/"), DOMAIN_ITEM_KEYS, total=3
        )
        self.assertEqual([d["id"] for d in items], newest_first)
        # the list is written by PostgreSQL: the same values as a webhook's
        record = self.env["emboux.mail.domain"].browse(created[0])
        self.assertEqual(items[-1], record._emboux_api_item())
        self.assertEqual(items[-1]["created_at"], stamp(record.create_date))
        for query, expected in (
            ("limit=2", newest_first[:2]),
            ("limit=2&offset=2", newest_first[2:]),
            ("offset=1", newest_first[1:]),
            ("offset=5", []),
            ("limit=0", []),
        ):
            with self.subTest(query=query):
                response = self.as_a("GET", f"/domains/?{query}")
                items = self.assertList(response, DOMAIN_ITEM_KEYS, total=3)
                self.assertEqual([d["id"] for d in items], expected)

    def test_delete_cascades(self):
        domain = self.create_domain("gone.example")
        other = self.create_domain("kept.example")
        self.create_mailbox("box@gone.example")
        self.create_mailbox("box@kept.example")
        self.create_alias("fwd@gone.example", "box@gone.example")
        self.create_alias("@gone.example", "box@kept.example")
        self.create_alias("fwd@kept.example", "box@kept.example")
        self.assertEqual(self.domains_used(self.TOKEN_A), 2)

        self.assertEmpty204(self.as_a("DELETE", "/domains/gone.example"))

        mailboxes = self.assertList(self.as_a("GET", "/users/"), MAILBOX_KEYS, 1)
        aliases = self.assertList(self.as_a("GET", "/aliases/"), ALIAS_KEYS, 1)
        self.assertEqual({m["domain_id"] for m in mailboxes + aliases}, {other["id"]})
        for model in ("emboux.mail.mailbox", "emboux.mail.alias"):
            self.assertFalse(self.env[model].search([("domain_id", "=", domain["id"])]))
        self.assertEqual(self.domains_used(self.TOKEN_A), 1)
        self.assertDetail(
            self.as_a("DELETE", "/domains/gone.example"), 404, "Domain not found"
        )
        self.assertDetail(
            self.master("DELETE", "/domains/never.example"), 404, "Domain not found"
        )
