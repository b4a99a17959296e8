"""A request refused after it wrote leaves nothing behind: the API raises
its errors so that Odoo rolls the request's transaction back."""

from .common import EmbouxApiCase


class TestRollback(EmbouxApiCase):
    def setUp(self):
        super().setUp()
        self.create_domain("mycompany.com")
        self.Partner = self.env["res.partner"].with_context(active_test=False)

    def test_mailbox_refused_after_insert(self):
        """A blank password is refused by the mailbox once it is inserted."""
        body = {
            "domain_name": "mycompany.com",
            "email": "hello@mycompany.com",
            "password": "   ",
        }
        response = self.as_a("POST", "/users/", json=body)
        self.assertInvalid(response, ["body", "password"])
        self.assertFalse(
            self.env["emboux.mail.mailbox"].search(
                [("email", "=", "hello@mycompany.com")]
            )
        )
        self.assertEqual(self.as_a("GET", "/users/").json(), [])
        # the domain's mailbox counter was not left changed either
        self.create_mailbox("one@mycompany.com")
        self.create_mailbox("two@mycompany.com")

    def test_api_key_duplicate_creates_no_tenant(self):
        body = {"token": self.TOKEN_B, "partner_ref": "partner_ghost"}
        response = self.master("POST", "/api-keys/", json=body)
        self.assertDetail(response, 400, "API key already exists")
        self.assertFalse(
            self.Partner.search([("emboux_partner_ref", "=", "partner_ghost")])
        )

    def test_domain_duplicate_creates_no_tenant(self):
        body = {"name": "mycompany.com", "partner_ref": "partner_ghost"}
        response = self.master("POST", "/domains/", json=body)
        self.assertDetail(response, 400, "Domain already exists")
        self.assertFalse(
            self.Partner.search([("emboux_partner_ref", "=", "partner_ghost")])
        )

    def test_refused_owner_keeps_owner(self):
        response = self.master(
            "PUT", "/domains/mycompany.com/owner", json={"partner_ref": "partner_ghost"}
        )
        self.assertDetail(
            response, 400, "No active api_key for partner_ref=partner_ghost"
        )
        self.assertEqual(len(self.as_a("GET", "/domains/").json()), 1)
        self.assertEqual(self.domains_used(self.TOKEN_A), 1)
