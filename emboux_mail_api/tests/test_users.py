"""/users/ (§B.1, §A.3.5): mailboxes, passwords and storage quotas."""

from .common import MAILBOX_KEYS, EmbouxApiCase

PASSWORD_CHANGED = {"message": "Contraseña actualizada correctamente"}


class TestUsers(EmbouxApiCase):
    def setUp(self):
        super().setUp()
        self.domain = self.create_domain("mycompany.com")

    def _mailbox(self, email):
        return self.env["emboux.mail.mailbox"].search([("email", "=", email)])

    def test_create(self):
        body = {
            "domain_name": "MyCompany.com",
            "email": "Hello@MyCompany.com",
            "password": "secure-pass-123",
        }
        self.secrets.add(body["password"])
        response = self.as_a("POST", "/users/", json=body)
        mailbox = self.assertAnswer(response, 201, MAILBOX_KEYS)
        self.assertEqual(mailbox["email"], "hello@mycompany.com")
        self.assertEqual(mailbox["domain_id"], self.domain["id"])
        self.assertEqual(self._mailbox("hello@mycompany.com").quota_mb, 2048)

    def test_create_errors(self):
        self.create_mailbox("hello@mycompany.com")
        for body, status, detail in (
            (
                {"domain_name": "mycompany.com", "email": "HELLO@mycompany.com"},
                400,
                "Email already exists",
            ),
            (
                {"domain_name": "none.example", "email": "x@none.example"},
                404,
                "Domain not found",
            ),
            (
                {"domain_name": "mycompany.com", "email": "x@elsewhere.example"},
                400,
                "Email does not belong to domain",
            ),
        ):
            with self.subTest(body=body):
                response = self.as_a("POST", "/users/", json={**body, "password": "pw"})
                self.assertDetail(response, status, detail)

    def test_mailbox_quota(self):
        self.create_mailbox("one@mycompany.com")
        self.create_mailbox("two@mycompany.com")
        body = {"domain_name": "mycompany.com", "email": "three@mycompany.com"}
        response = self.as_a("POST", "/users/", json={**body, "password": "pw"})
        self.assertDetail(response, 403, "Mailbox quota exceeded for this domain")
        self.assertFalse(self._mailbox("three@mycompany.com"))
        # the quota is per domain
        self.create_domain("other.example")
        self.create_mailbox("three@other.example")

    def test_list(self):
        other = self.create_domain("other.example")
        first = self.create_mailbox("a@mycompany.com")
        second = self.create_mailbox("b@other.example")
        third = self.create_mailbox("c@mycompany.com")
        items = self.assertList(self.as_a("GET", "/users/"), MAILBOX_KEYS, total=3)
        self.assertEqual(
            [m["id"] for m in items], [third["id"], second["id"], first["id"]]
        )
        path = f"/users/?domain_id={self.domain['id']}"
        items = self.assertList(self.as_a("GET", path), MAILBOX_KEYS, total=2)
        self.assertEqual([m["id"] for m in items], [third["id"], first["id"]])
        path = f"/users/?domain_id={other['id']}&limit=1&offset=0"
        items = self.assertList(self.as_a("GET", path), MAILBOX_KEYS, total=1)
        self.assertEqual([m["email"] for m in items], ["b@other.example"])
        items = self.assertList(
            self.as_a("GET", "/users/?limit=1&offset=1"), MAILBOX_KEYS, 3
        )
        self.assertEqual([m["id"] for m in items], [second["id"]])
        self.assertList(self.as_a("GET", "/users/?domain_id=999999"), MAILBOX_KEYS, 0)

    def test_total_follows_every_change_and_scope(self):
        """X-Total-Count comes from the domains' counters: it must be the
        number of rows the caller may list, after creates and deletes,
        per tenant, per domain and for the master."""
        self.create_domain("theirs.example", token=self.TOKEN_B)
        self.create_mailbox("x@theirs.example", token=self.TOKEN_B)
        for n in range(2):
            self.create_mailbox(f"m{n}@mycompany.com")
        self.assertList(self.as_a("GET", "/users/"), MAILBOX_KEYS, total=2)
        self.assertList(self.as_b("GET", "/users/"), MAILBOX_KEYS, total=1)
        everyone = self.env["emboux.mail.mailbox"].search_count([])
        self.assertList(self.master("GET", "/users/"), MAILBOX_KEYS, total=everyone)
        theirs = self.env["emboux.mail.domain"].search(
            [("name", "=", "theirs.example")]
        )
        self.assertList(
            self.as_a("GET", f"/users/?domain_id={theirs.id}"), MAILBOX_KEYS, 0
        )
        self.assertEmpty204(self.as_a("DELETE", "/users/m0@mycompany.com"))
        self.assertList(self.as_a("GET", "/users/?limit=0"), MAILBOX_KEYS, total=1)
        path = f"/users/?domain_id={self.domain['id']}"
        self.assertList(self.as_a("GET", path), MAILBOX_KEYS, total=1)

    def test_password_hashed_and_changed(self):
        self.create_mailbox("hello@mycompany.com", password="secure-pass-123")
        mailbox = self._mailbox("hello@mycompany.com")
        self.env.cr.execute(
            "SELECT password_hash FROM emboux_mail_mailbox WHERE id = %s", [mailbox.id]
        )
        stored = self.env.cr.fetchone()[0]
        self.assertTrue(stored.startswith("{SHA512-CRYPT}"), stored)
        self.assertNotIn("secure-pass-123", stored)
        self.assertTrue(mailbox._emboux_check_password("secure-pass-123"))
        self.assertFalse(mailbox._emboux_check_password("wrong"))

        self.secrets.add("new-secure-pass")
        response = self.as_a(
            "PUT", "/users/hello@mycompany.com", json={"password": "new-secure-pass"}
        )
        self.assertEqual(
            (response.status_code, response.json()), (200, PASSWORD_CHANGED)
        )
        self.assertTrue(mailbox._emboux_check_password("new-secure-pass"))
        self.assertFalse(mailbox._emboux_check_password("secure-pass-123"))
        self.assertDetail(
            self.as_a("PUT", "/users/none@mycompany.com", json={"password": "x"}),
            404,
            "Mailbox not found",
        )

    def test_delete(self):
        self.create_mailbox("hello@mycompany.com")
        self.create_alias("info@mycompany.com", "hello@mycompany.com")
        self.assertEmpty204(self.as_a("DELETE", "/users/Hello@MyCompany.com"))
        self.assertFalse(self._mailbox("hello@mycompany.com"))
        self.assertEqual(self.as_a("GET", "/users/").json(), [])
        self.assertDetail(
            self.as_a("DELETE", "/users/hello@mycompany.com"), 404, "Mailbox not found"
        )
        # the freed slot counts again
        self.create_mailbox("one@mycompany.com")
        self.create_mailbox("two@mycompany.com")

    def test_quota(self):
        self.create_mailbox("hello@mycompany.com")
        path = "/users/hello@mycompany.com/quota"
        response = self.as_a("GET", path)
        self.assertEqual(
            self.assertAnswer(response, 200, {"email", "quota_mb", "used_mb"}),
            {"email": "hello@mycompany.com", "quota_mb": 2048, "used_mb": 0.0},
        )
        response = self.as_a("PUT", path, json={"quota_mb": 4096})
        self.assertEqual(
            (response.status_code, response.json()),
            (
                200,
                {"email": "hello@mycompany.com", "quota_mb": 4096, "used_mb": 0.0},
            ),
        )
        self.assertEqual(self.as_a("GET", path).json()["quota_mb"], 4096)
        self.assertEqual(self._mailbox("hello@mycompany.com").quota_mb, 4096)
        for method, body in (("GET", None), ("PUT", {"quota_mb": 1})):
            self.assertDetail(
                self.as_a(method, "/users/none@mycompany.com/quota", json=body),
                404,
                "Mailbox not found",
            )

    def test_idn_addresses(self):
        """Addresses of an IDN domain are found by either spelling."""
        self.create_domain("bücher.example")
        response = self.as_a(
            "POST",
            "/users/",
            json={
                "domain_name": "bücher.example",
                "email": "Info@Bücher.example",
                "password": "Secret-pass-1",
            },
        )
        self.assertEqual(response.status_code, 201, response.text)
        self.assertEqual(response.json()["email"], "info@xn--bcher-kva.example")
        for path in ("/users/info@bücher.example", "/users/info@xn--bcher-kva.example"):
            with self.subTest(path=path):
                response = self.as_a("GET", f"{path}/quota")
                self.assertEqual(response.status_code, 200, response.text)
        self.assertEmpty204(self.as_a("DELETE", "/users/INFO@Bücher.example"))
