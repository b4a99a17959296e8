"""The audit trail's REST API door: a change writes exactly one entry naming
the key that made it (or the server's master token), and a password sent to
the API never reaches an entry."""

import json

from odoo.tests import tagged

from .common import EmbouxApiCase


@tagged("post_install", "-at_install")
class TestApiAudit(EmbouxApiCase):
    def setUp(self):
        super().setUp()
        self.create_domain("audit.test")
        self.Audit = self.env["emboux.mail.audit"]
        self.last_id = self.Audit.search([], limit=1).id

    def new_entries(self):
        return self.Audit.search([("id", ">", self.last_id)], order="id")

    def test_tenant_key_change_is_one_entry(self):
        self.create_mailbox("info@audit.test")
        self.assertRecordValues(
            self.new_entries(),
            [
                {
                    "action": "create",
                    "res_model": "emboux.mail.mailbox",
                    "name": "info@audit.test",
                    "partner_id": self.tenant_a.id,
                    "channel": "api",
                    "user_id": self.env.ref("emboux_mail_api.user_emboux_api").id,
                    "api_key_id": self.key_a.id,
                    "api_key_ref": f"A (#{self.key_a.id})",
                    "by_customer": True,
                    "address": "127.0.0.1",
                    "secret_changed": True,
                }
            ],
        )

    def test_master_token_is_named(self):
        self.create_mailbox("info@audit.test", token=self.MASTER)
        self.assertRecordValues(
            self.new_entries(),
            [
                {
                    "channel": "api",
                    "api_key_id": False,
                    "api_key_ref": "EMBOUX_API_KEY",
                    "by_customer": False,
                }
            ],
        )

    def test_deleted_key_stays_named(self):
        self.create_mailbox("info@audit.test")
        entry = self.new_entries()
        self.key_a.unlink()
        self.assertRecordValues(
            entry, [{"api_key_id": False, "api_key_ref": f"A (#{self.key_a.id})"}]
        )

    def test_password_change_records_no_password(self):
        self.create_mailbox("info@audit.test", password="First-Api-Pass-1")
        self.last_id = self.new_entries().id
        password = "Second-Api-Pass-2"
        self.secrets.add(password)
        response = self.as_a(
            "PUT", "/users/info@audit.test", json={"password": password}
        )
        self.assertEqual(response.status_code, 200, response.text)
        self.assertRecordValues(
            self.new_entries(),
            [
                {
                    "action": "write",
                    "channel": "api",
                    "api_key_id": self.key_a.id,
                    "secret_changed": True,
                    "changes": False,
                }
            ],
        )
        for entry in self.Audit.search([]):
            text = json.dumps(entry.read()[0], default=str)
            for secret in (*self.secrets, "First-Api-Pass-1"):
                self.assertNotIn(secret, text)
            self.assertFalse(
                [name for name in entry.changes or {} if "password" in name]
            )
