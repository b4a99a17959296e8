"""Domain actions (§B.1): register-subdomain, parent, dns-check, owner,
suspend and activate."""

import dns.exception

from .common import SEED_REGISTRATION, EmbouxApiCase

REGISTRATION_KEYS = {
    "name",
    "verification_token",
    "dkim_tokens",
    "verified",
    "dns_records",
    "provider",
}
PARENT_KEYS = {"name", "parent_domain", "is_wildcard"}
OWNER_KEYS = {"name", "partner_ref", "previous_partner_ref"}
SUSPENSION_KEYS = {"name", "suspended", "message"}


class TestDomainActions(EmbouxApiCase):
    def _verified_wildcard(self, name):
        """Tenant A's wildcard parent, verified with the provider (set by the
        master and the provider, so written directly here)."""
        domain = self.create_domain(name, token=self.MASTER, partner_ref="partner_42")
        self.env["emboux.mail.domain"].browse(domain["id"]).write(
            {"is_wildcard": True, "verified": True, "provider": "mailgun"}
        )
        return domain

    # -- register-subdomain ----------------------------------------------------------
    def test_register_subdomain(self):
        self._verified_wildcard("example.com")
        self.create_domain("client1.example.com")
        response = self.as_a("POST", "/domains/client1.example.com/register-subdomain")
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(
            response.json(),
            SEED_REGISTRATION,
        )

    def test_register_subdomain_errors(self):
        self.plan_a.domains_allowed = 0
        self.create_domain("plain.example")
        self.create_domain("sub.plain.example")
        # tenant A's wildcard, placed by the master without vouching for it
        response = self.master(
            "POST",
            "/domains/",
            json={
                "name": "wild.example",
                "partner_ref": "partner_42",
                "verified": False,
            },
        )
        wildcard = self.assertAnswer(response, 201, {"id", "name", "created_at"})
        self.master("PUT", "/domains/wild.example/parent", json={"is_wildcard": True})
        self.create_domain("sub.wild.example")
        for name, status, detail in (
            ("plain.example", 400, "Name is not a subdomain"),
            ("sub.plain.example", 400, "Parent domain is not a verified wildcard"),
            ("sub.wild.example", 400, "Parent domain is not a verified wildcard"),
            ("none.plain.example", 404, "Domain not found"),
        ):
            with self.subTest(name=name):
                path = f"/domains/{name}/register-subdomain"
                self.assertDetail(self.as_a("POST", path), status, detail)
        sub = self.env["emboux.mail.domain"].search([("name", "=", "sub.wild.example")])
        self.assertEqual(sub.parent_id.id, wildcard["id"])
        self.assertFalse(sub.verified)

    # -- parent ----------------------------------------------------------------------
    def test_parent(self):
        self.create_domain("ganemo.com", token=self.MASTER)
        self.create_domain("shop.ganemo.com", token=self.MASTER)
        path = "/domains/ganemo.com/parent"
        response = self.master("PUT", path, json={"is_wildcard": True})
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(
            response.json(),
            {"name": "ganemo.com", "parent_domain": None, "is_wildcard": True},
        )
        path = "/domains/shop.ganemo.com/parent"
        response = self.master("PUT", path, json={"parent_domain": "GANEMO.com"})
        self.assertEqual(
            self.assertAnswer(response, 200, PARENT_KEYS),
            {
                "name": "shop.ganemo.com",
                "parent_domain": "ganemo.com",
                "is_wildcard": False,
            },
        )
        response = self.master("PUT", path, json={"parent_domain": None})
        self.assertEqual(response.json()["parent_domain"], None)
        self.assertEqual(self.master("PUT", path, json={}).status_code, 200)

    def test_listing_shows_each_domain_as_it_is(self):
        """GET /domains/ reads its rows in one query: each must still be
        what the record says, parent, wildcard and suspension included."""
        self.create_domain("ganemo.com", token=self.MASTER)
        self.create_domain("shop.ganemo.com", token=self.MASTER)
        for path, body in (
            ("/domains/ganemo.com/parent", {"is_wildcard": True}),
            ("/domains/shop.ganemo.com/parent", {"parent_domain": "ganemo.com"}),
            ("/domains/shop.ganemo.com/suspend", None),
        ):
            response = self.master("PUT", path, json=body)
            self.assertEqual(response.status_code, 200, response.text)
        listed = {item["name"]: item for item in self.master("GET", "/domains/").json()}
        Domain = self.env["emboux.mail.domain"]
        for domain in Domain.search(
            [("name", "in", ["ganemo.com", "shop.ganemo.com"])]
        ):
            with self.subTest(domain=domain.name):
                self.assertEqual(
                    listed[domain.name],
                    {
                        "id": domain.id,
                        "name": domain.name,
                        "created_at": domain.create_date.isoformat(timespec="seconds"),
                        "verified": domain.verified,
                        "suspended": domain.suspended,
                        "suspension_reason": domain.suspension_reason or None,
                        "parent_domain": domain.parent_id.name or None,
                        "is_wildcard": domain.is_wildcard,
                    },
                )
        shop = listed["shop.ganemo.com"]
        self.assertEqual(
            (shop["parent_domain"], shop["suspended"]), ("ganemo.com", True)
        )
        self.assertTrue(shop["suspension_reason"])
        self.assertTrue(listed["ganemo.com"]["is_wildcard"])

    def test_parent_idn(self):
        """The parent is looked up by its stored (punycode) name."""
        self.create_domain("bücher.example", token=self.MASTER)
        self.create_domain("shop.bücher.example", token=self.MASTER)
        path = "/domains/shop.xn--bcher-kva.example/parent"
        response = self.master("PUT", path, json={"parent_domain": "Bücher.example"})
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.json()["parent_domain"], "xn--bcher-kva.example")

    def test_parent_errors(self):
        self.create_domain("child.example", token=self.MASTER)
        self.assertDetail(
            self.master("PUT", "/domains/none.example/parent", json={}),
            404,
            "Domain not found",
        )
        self.assertDetail(
            self.master(
                "PUT",
                "/domains/child.example/parent",
                json={"parent_domain": "unknown.example"},
            ),
            404,
            "Parent domain not found",
        )

    # -- dns-check -------------------------------------------------------------------
    def test_dns_check(self):
        """ok / missing (NXDOMAIN) / incorrect / unknown (timeout) per
        record (§B.2.9); all_ok only when every record is ok."""
        self.create_domain("dns.example")
        good = {
            ("dns.example", "MX"): ["10 mx1.emboux.com."],
            ("dns.example", "TXT"): ['"v=spf1 include:emboux.com ~all"'],
            **self.dkim_zone("dns.example"),
            ("_dmarc.dns.example", "TXT"): ['"v=DMARC1; p=none"'],
        }
        path = "/domains/dns.example/dns-check"
        for zone, statuses in (
            (good, {"ok"}),
            ({}, {"missing"}),
            (
                {**good, ("dns.example", "MX"): ["10 mx.other.example."]},
                {"ok", "incorrect"},
            ),
            (
                {**good, ("_dmarc.dns.example", "TXT"): dns.exception.Timeout},
                {"ok", "unknown"},
            ),
        ):
            with self.subTest(statuses=statuses), self.fake_dns(zone):
                check = self.assertAnswer(
                    self.as_a("GET", path), 200, {"name", "all_ok", "records"}
                )
                self.assertEqual(check["name"], "dns.example")
                for record in check["records"]:
                    self.assertEqual(
                        set(record), {"record_type", "name", "expected", "status"}
                    )
                self.assertEqual({r["status"] for r in check["records"]}, statuses)
                self.assertEqual(check["all_ok"], statuses == {"ok"})
                names = {(r["record_type"], r["name"]) for r in check["records"]}
                self.assertLessEqual(
                    {
                        ("MX", "dns.example"),
                        ("TXT", "dns.example"),
                        ("TXT", "emboux._domainkey.dns.example"),
                        ("TXT", "_dmarc.dns.example"),
                    },
                    names,
                )
        self.assertDetail(
            self.as_a("GET", "/domains/none.example/dns-check"), 404, "Domain not found"
        )

    # -- owner -----------------------------------------------------------------------
    def test_owner_transfer(self):
        self.create_domain("client.example.com", token=self.TOKEN_B)
        self.create_mailbox("box@client.example.com", token=self.TOKEN_B)
        self.create_alias("fwd@client.example.com", "x@out.example", self.TOKEN_B)
        path = "/domains/client.example.com/owner"
        response = self.master("PUT", path, json={"partner_ref": "partner_42"})
        self.assertEqual(
            self.assertAnswer(response, 200, OWNER_KEYS),
            {
                "name": "client.example.com",
                "partner_ref": "partner_42",
                "previous_partner_ref": "partner_17",
            },
        )
        self.assertEqual(self.domains_used(self.TOKEN_A), 1)
        self.assertEqual(self.domains_used(self.TOKEN_B), 0)
        # the mailboxes and aliases move with their domain
        for listing in ("/domains/", "/users/", "/aliases/"):
            self.assertEqual(len(self.as_a("GET", listing).json()), 1)
            self.assertEqual(self.as_b("GET", listing).json(), [])

        # same owner: a no-op echo, no counter moves
        response = self.master("PUT", path, json={"partner_ref": "partner_42"})
        self.assertEqual(
            response.json(),
            {
                "name": "client.example.com",
                "partner_ref": "partner_42",
                "previous_partner_ref": "partner_42",
            },
        )
        self.assertEqual(self.domains_used(self.TOKEN_A), 1)

        # null orphans: only the previous owner's counter goes down
        response = self.master("PUT", path, json={"partner_ref": None})
        self.assertEqual(
            response.json(),
            {
                "name": "client.example.com",
                "partner_ref": None,
                "previous_partner_ref": "partner_42",
            },
        )
        self.assertEqual(self.domains_used(self.TOKEN_A), 0)
        self.assertEqual(self.domains_used(self.TOKEN_B), 0)
        self.assertEqual(self.as_a("GET", "/domains/").json(), [])
        response = self.master("PUT", path, json={"partner_ref": "partner_17"})
        self.assertEqual(response.json()["previous_partner_ref"], None)
        self.assertEqual(self.domains_used(self.TOKEN_B), 1)

    def test_owner_errors(self):
        self.create_domain("moved.example")
        path = "/domains/moved.example/owner"
        # a tenant that exists, but whose only key is revoked
        self.create_domain("x.example", token=self.MASTER, partner_ref="partner_5")
        revoked = self.env["emboux.mail.api.key"].create(
            {
                "partner_id": self.env["res.partner"]
                .search([("emboux_partner_ref", "=", "partner_5")])
                .id,
                "token": "emb_partner5_revoked_0001",
                "active": False,
            }
        )
        self.assertTrue(revoked)
        for ref in ("partner_99", "partner_5"):
            with self.subTest(ref=ref):
                response = self.master("PUT", path, json={"partner_ref": ref})
                self.assertDetail(
                    response, 400, f"No active api_key for partner_ref={ref}"
                )
        self.assertEqual(self.domains_used(self.TOKEN_A), 1)
        self.assertDetail(
            self.master(
                "PUT", "/domains/none.example/owner", json={"partner_ref": None}
            ),
            404,
            "Domain not found",
        )
        self.assertInvalid(self.master("PUT", path, json={}), ["body", "partner_ref"])

    # -- suspend / activate ----------------------------------------------------------
    def test_suspend_activate(self):
        domain = self.create_domain("client.example.com")
        record = self.env["emboux.mail.domain"].browse(domain["id"])
        for action, suspended, message in (
            ("suspend", True, "Domain suspended"),
            ("suspend", True, "Domain suspended"),
            ("activate", False, "Domain activated"),
            ("activate", False, "Domain activated"),
        ):
            with self.subTest(action=action):
                response = self.as_a("PUT", f"/domains/client.example.com/{action}")
                self.assertEqual(
                    self.assertAnswer(response, 200, SUSPENSION_KEYS),
                    {
                        "name": "client.example.com",
                        "suspended": suspended,
                        "message": message,
                    },
                )
                self.assertEqual(record.suspended, suspended)
        for action in ("suspend", "activate"):
            self.assertDetail(
                self.master("PUT", f"/domains/none.example/{action}"),
                404,
                "Domain not found",
            )
