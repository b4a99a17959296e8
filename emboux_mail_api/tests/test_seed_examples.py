"""Every ``curl`` example of /work/shared/seeds/*.txt, sent as curl sends
it (method, path, headers, raw body), checked for status, JSON keys and
values; ids and timestamps aside. YOUR_API_KEY is tenant partner_42's key,
MASTER_TOKEN the server's EMBOUX_API_KEY."""

from .common import (
    DOMAIN_ITEM_KEYS,
    DOMAIN_KEYS,
    MAILBOX_KEYS,
    SEED_REGISTRATION,
    EmbouxApiCase,
)

JSON = "application/json"


class TestSeedExamples(EmbouxApiCase):
    def curl(self, method, path, token, data=None, content_type=None):
        headers = {"Authorization": f"Bearer {token}"}
        if content_type:
            headers["Content-Type"] = content_type
        return self.api(method, path, data=data, headers=headers)

    def _strip(self, value):
        return {k: v for k, v in value.items() if k not in ("id", "created_at")}

    # -- domains.txt -----------------------------------------------------------------
    def test_create_domain_customer(self):
        response = self.curl(
            "POST", "/domains/", self.TOKEN_A, '{"name": "mycompany.com"}', JSON
        )
        domain = self.assertAnswer(response, 201, DOMAIN_KEYS)
        self.assertEqual(domain["name"], "mycompany.com")
        response = self.curl(
            "POST", "/domains/", self.TOKEN_A, '{"name": "mycompany.com"}', JSON
        )
        self.assertDetail(response, 400, "Domain already exists")

    def test_create_domain_master(self):
        response = self.curl(
            "POST",
            "/domains/",
            self.MASTER,
            '{"name": "mycompany.com", "partner_ref": "partner_42"}',
            JSON,
        )
        self.assertEqual(
            self._strip(self.assertAnswer(response, 201, DOMAIN_KEYS)),
            {"name": "mycompany.com"},
        )
        self.assertEqual(
            self.as_a("GET", "/domains/").json()[0]["name"], "mycompany.com"
        )

    def test_list_domains(self):
        self.create_domain("mycompany.com")
        self.create_domain("example.org")
        response = self.curl("GET", "/domains/", self.TOKEN_A)
        items = self.assertList(response, DOMAIN_ITEM_KEYS)
        self.assertEqual([d["name"] for d in items], ["example.org", "mycompany.com"])

    def test_delete_domain(self):
        self.create_domain("mycompany.com")
        response = self.curl("DELETE", "/domains/mycompany.com", self.TOKEN_A)
        self.assertEmpty204(response)
        response = self.curl("DELETE", "/domains/mycompany.com", self.TOKEN_A)
        self.assertDetail(response, 404, "Domain not found")

    def test_register_subdomain(self):
        # the tenant's own wildcard: another party's adopts no subdomain
        parent = self.create_domain("example.com", self.MASTER, "partner_42")
        self.env["emboux.mail.domain"].browse(parent["id"]).write(
            {"is_wildcard": True, "verified": True, "provider": "mailgun"}
        )
        self.create_domain("client1.example.com")
        response = self.curl(
            "POST", "/domains/client1.example.com/register-subdomain", self.TOKEN_A
        )
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(
            response.json(),
            SEED_REGISTRATION,
        )

    def test_parent(self):
        self.create_domain("ganemo.com", token=self.MASTER)
        response = self.curl(
            "PUT",
            "/domains/ganemo.com/parent",
            self.MASTER,
            '{"is_wildcard": true}',
            JSON,
        )
        self.assertEqual(
            (response.status_code, response.json()),
            (200, {"name": "ganemo.com", "parent_domain": None, "is_wildcard": True}),
        )

    def test_dns_check(self):
        """No curl example; the documented answer, DNS answered locally."""
        self.create_domain("ganemo.com")
        zone = {
            ("ganemo.com", "MX"): ["10 mx1.emboux.com."],
            ("ganemo.com", "TXT"): ['"v=spf1 include:emboux.com -all"'],
            **self.dkim_zone("ganemo.com"),
            ("_dmarc.ganemo.com", "TXT"): ['"v=DMARC1; p=reject"'],
        }
        with self.fake_dns(zone):
            response = self.curl("GET", "/domains/ganemo.com/dns-check", self.TOKEN_A)
        check = self.assertAnswer(response, 200, {"name", "all_ok", "records"})
        self.assertEqual((check["name"], check["all_ok"]), ("ganemo.com", True))
        for record in (
            {"record_type": "MX", "name": "ganemo.com", "expected": "mx1.emboux.com"},
            {
                "record_type": "TXT",
                "name": "ganemo.com",
                "expected": "include:emboux.com",
            },
        ):
            self.assertIn({**record, "status": "ok"}, check["records"])

    def test_transfer_owner(self):
        self.create_domain("client.example.com", token=self.TOKEN_B)
        response = self.curl(
            "PUT",
            "/domains/client.example.com/owner",
            self.MASTER,
            '{"partner_ref": "partner_42"}',
            JSON,
        )
        self.assertEqual(
            (response.status_code, response.json()),
            (
                200,
                {
                    "name": "client.example.com",
                    "partner_ref": "partner_42",
                    "previous_partner_ref": "partner_17",
                },
            ),
        )

    def test_activate(self):
        self.create_domain("client.example.com")
        response = self.curl(
            "PUT", "/domains/client.example.com/activate", self.TOKEN_A
        )
        self.assertEqual(
            (response.status_code, response.json()),
            (
                200,
                {
                    "name": "client.example.com",
                    "suspended": False,
                    "message": "Domain activated",
                },
            ),
        )

    # -- mailboxes.txt -----------------------------------------------------------------
    def test_mailboxes(self):
        domain = self.create_domain("mycompany.com")
        self.secrets |= {"secure-pass-123", "new-secure-pass"}
        data = (
            '{ "domain_name": "mycompany.com", "email": "hello@mycompany.com", '
            '"password": "secure-pass-123" }'
        )
        response = self.curl("POST", "/users/", self.TOKEN_A, data, JSON)
        mailbox = self.assertAnswer(response, 201, MAILBOX_KEYS)
        stored = self.env["emboux.mail.mailbox"].search(
            [("email", "=", "hello@mycompany.com")]
        )
        self.assertEqual(
            self._strip(mailbox),
            # the seed's fields, and the quota (an addition of this API)
            {
                "domain_id": domain["id"],
                "email": "hello@mycompany.com",
                "quota_mb": stored.quota_mb,
            },
        )
        response = self.curl("POST", "/users/", self.TOKEN_A, data, JSON)
        self.assertDetail(response, 400, "Email already exists")

        response = self.curl("GET", f"/users/?domain_id={domain['id']}", self.TOKEN_A)
        self.assertEqual(self.assertList(response, MAILBOX_KEYS), [mailbox])

        response = self.curl(
            "PUT",
            "/users/hello@mycompany.com",
            self.TOKEN_A,
            '{"password": "new-secure-pass"}',
            JSON,
        )
        self.assertEqual(
            (response.status_code, response.json()),
            (200, {"message": "Contraseña actualizada correctamente"}),
        )
        response = self.curl("DELETE", "/users/hello@mycompany.com", self.TOKEN_A)
        self.assertEmpty204(response)
        response = self.curl("DELETE", "/users/hello@mycompany.com", self.TOKEN_A)
        self.assertDetail(response, 404, "Mailbox not found")

    def test_mailbox_errors(self):
        self.create_domain("mycompany.com")
        self.create_mailbox("one@mycompany.com")
        self.create_mailbox("two@mycompany.com")
        data = '{"domain_name": "%s", "email": "hello@%s", "password": "p"}'
        response = self.curl(
            "POST", "/users/", self.TOKEN_A, data % (("mycompany.com",) * 2), JSON
        )
        self.assertDetail(response, 403, "Mailbox quota exceeded for this domain")
        response = self.curl(
            "POST", "/users/", self.TOKEN_A, data % (("none.example",) * 2), JSON
        )
        self.assertDetail(response, 404, "Domain not found")

    # -- /openapi.json -----------------------------------------------------------------
    def test_published_examples(self):
        """The document shows the seed pages' own examples."""
        paths = self.api("GET", "/openapi.json").json()["paths"]

        def example(method, path, status=None):
            operation = paths[path][method]
            if status:
                content = operation["responses"][status]["content"]
            else:
                content = operation["requestBody"]["content"]
            return content[JSON]["example"]

        self.assertEqual(
            example("post", "/domains/"),
            {"name": "mycompany.com", "partner_ref": "partner_42"},
        )
        self.assertEqual(
            example("post", "/domains/", "201"),
            {"id": 1, "name": "mycompany.com", "created_at": "2025-01-15T10:30:00"},
        )
        self.assertEqual(
            [d["name"] for d in example("get", "/domains/", "200")],
            ["example.org", "mycompany.com"],
        )
        self.assertEqual(
            example("post", "/domains/{domain_name}/register-subdomain", "200"),
            SEED_REGISTRATION,
        )
        self.assertEqual(
            example("put", "/domains/{domain_name}/owner", "200"),
            {
                "name": "client.example.com",
                "partner_ref": "partner_42",
                "previous_partner_ref": "partner_17",
            },
        )
        self.assertEqual(
            example("post", "/users/"),
            {
                "domain_name": "mycompany.com",
                "email": "hello@mycompany.com",
                "password": "secure-pass-123",
            },
        )
        self.assertEqual(
            example("put", "/users/{email}", "200"),
            {"message": "Contraseña actualizada correctamente"},
        )
