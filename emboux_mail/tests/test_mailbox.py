import logging

from odoo.tests import tagged

from ..exceptions import (
    EmbouxNotFound,
    EmbouxQuotaError,
    EmbouxUserError,
    EmbouxValidationError,
)
from .common import EmbouxMailCase


@tagged("post_install", "-at_install")
class TestMailbox(EmbouxMailCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.domain = cls.Domain.create(
            {"name": "example.com", "partner_id": cls.tenant.id}
        )

    def test_email_normalised_and_domain_found(self):
        mailbox = self.Mailbox.create({"email": "  Hello@EXAMPLE.com "})
        self.assertEqual(mailbox.email, "hello@example.com")
        self.assertEqual(mailbox.domain_id, self.domain)
        self.assertEqual(mailbox.quota_mb, 500)

    def test_bad_addresses(self):
        for bad in [
            "",
            "nobody",
            "@example.com",
            "a b@example.com",
            ".a@example.com",
            "a..b@example.com",
            "x" * 65 + "@example.com",
            "a@",
            "a@exa mple.com",
        ]:
            with (
                self.subTest(bad=bad),
                self.assertRaises(EmbouxValidationError) as raised,
            ):
                self.Mailbox.create({"email": bad})
            self.assertEqual(raised.exception.status, 422)
            self.assertIn("Email:", str(raised.exception))

    def test_unknown_domain_and_mismatch(self):
        with self.assertEmbouxError(EmbouxNotFound, "Domain not found", 404):
            self.Mailbox.create({"email": "a@unknown.org"})
        with self.assertEmbouxError(
            EmbouxValidationError, "Email does not belong to domain", 400
        ):
            self.Mailbox.create({"email": "a@unknown.org", "domain_id": self.domain.id})

    def test_duplicate(self):
        self.Mailbox.create({"email": "a@example.com"})
        with self.assertEmbouxError(EmbouxValidationError, "Email already exists", 400):
            self.Mailbox.create({"email": "A@Example.com"})

    def test_quota_per_domain_and_counter(self):
        first = self.Mailbox.create({"email": "a@example.com"})
        self.Mailbox.create({"email": "b@example.com"})
        self.assertEqual(self.domain.mailbox_count, 2)
        with self.assertEmbouxError(
            EmbouxQuotaError, "Mailbox quota exceeded for this domain", 403
        ) as check:
            self.Mailbox.create({"email": "c@example.com"})
        self.assertIn("example.com", str(check.exception))
        self.assertIn("2 of 2", str(check.exception))
        first.unlink()
        self.assertEqual(self.domain.mailbox_count, 1)
        self.Mailbox.create({"email": "c@example.com"})
        with self.assertRaises(EmbouxQuotaError):
            self.Mailbox.create(
                [{"email": "d@example.com"}, {"email": "e@example.com"}]
            )

    def test_quota_from_plan_follows_plan_changes(self):
        self.plan.mailboxes_per_domain = 3
        for name in "abc":
            self.Mailbox.create({"email": f"{name}@example.com"})
        with self.assertRaises(EmbouxQuotaError):
            self.Mailbox.create({"email": "d@example.com"})

    def test_password_is_write_only_and_hashed(self):
        secret = "Correct-Horse-42"
        with self.assertLogs(level=logging.DEBUG) as logs:
            logging.getLogger("odoo.addons.emboux_mail").debug("start")
            mailbox = self.Mailbox.create(
                {"email": "a@example.com", "password": secret}
            )
            mailbox.password = secret + "!"
        self.assertFalse(any(secret in line for line in logs.output))
        self.env.invalidate_all()
        self.assertFalse(mailbox.password)
        self.assertFalse(mailbox.read(["password"])[0]["password"])
        self.assertTrue(mailbox._emboux_check_password(secret + "!"))
        self.assertFalse(mailbox._emboux_check_password(secret))
        self.env.cr.execute(
            "SELECT password_hash FROM emboux_mail_mailbox WHERE id = %s", [mailbox.id]
        )
        self.assertTrue(self.env.cr.fetchone()[0].startswith("{SHA512-CRYPT}$6$"))
        self.assertNotStoredAnywhere(secret)
        with self.assertRaises(EmbouxValidationError):
            mailbox.password = "   "

    def test_connected_mode_keeps_no_hash(self):
        self.env["ir.config_parameter"].set_param(
            "emboux_mail.upstream_url", "http://127.0.0.1:9"
        )
        mailbox = self.Mailbox.create(
            {"email": "a@example.com", "password": "s3cret-passw0rd"}
        )
        self.env.cr.execute(
            "SELECT password_hash FROM emboux_mail_mailbox WHERE id = %s", [mailbox.id]
        )
        self.assertIsNone(self.env.cr.fetchone()[0])

    def test_address_cannot_change(self):
        mailbox = self.Mailbox.create({"email": "a@example.com"})
        with self.assertRaises(EmbouxUserError):
            mailbox.email = "b@example.com"
        mailbox.quota_mb = 2048
        self.assertEqual(mailbox.quota_mb, 2048)
