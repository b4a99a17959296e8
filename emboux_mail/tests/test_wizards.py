from odoo.tests import Form, tagged

from ..exceptions import EmbouxUserError, EmbouxValidationError
from .common import EmbouxMailCase


@tagged("post_install", "-at_install")
class TestWizards(EmbouxMailCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.domain = cls.Domain.create(
            {"name": "example.com", "partner_id": cls.tenant.id}
        )
        cls.mailbox = cls.Mailbox.create({"email": "a@example.com"})

    def _password_wizard(self):
        return self.env["emboux.mail.mailbox.password"].with_context(
            active_id=self.mailbox.id
        )

    def test_typed_password(self):
        with self.assertRaises(EmbouxValidationError):
            self._password_wizard().create(
                {"mode": "type", "new_password": "abcdefgh1", "confirm_password": "x"}
            )
        wizard = self._password_wizard().create(
            {
                "mode": "type",
                "new_password": "Typed-Secret-77",
                "confirm_password": "Typed-Secret-77",
            }
        )
        wizard.action_apply()
        self.assertTrue(self.mailbox._emboux_check_password("Typed-Secret-77"))
        self.assertNotStoredAnywhere("Typed-Secret-77")

    def test_generated_password_shown_once(self):
        action = self._password_wizard().create({"mode": "generate"}).action_apply()
        self.assertEqual(action["res_model"], "emboux.mail.secret.show")
        password = action["context"]["default_secret"]
        self.assertGreaterEqual(len(password), 16)
        self.assertTrue(self.mailbox._emboux_check_password(password))
        self.assertNotStoredAnywhere(password)

    def test_api_key_wizard(self):
        action = (
            self.env["emboux.mail.api.key.create"]
            .create({"partner_id": self.tenant.id, "name": "CI"})
            .action_create()
        )
        token = action["context"]["default_secret"]
        key = self.Key._emboux_check_token(token)
        self.assertEqual((key.name, key.partner_id), ("CI", self.tenant))
        self.assertNotStoredAnywhere(token)
        shown = Form(
            self.env["emboux.mail.secret.show"].with_context(**action["context"])
        )
        self.assertEqual(shown.secret, token)

    def test_transfer_wizard(self):
        other = self.make_tenant("Other")
        self.Key._emboux_generate({"partner_id": other.id})
        self.env["emboux.mail.domain.transfer"].with_context(
            active_ids=self.domain.ids
        ).create({"new_partner_id": other.id}).action_transfer()
        self.assertEqual(self.domain.partner_id, other)
        self.assertEqual(other.emboux_domain_count, 1)

    def test_transfer_to_nobody_must_be_chosen(self):
        Transfer = self.env["emboux.mail.domain.transfer"].with_context(
            active_ids=self.domain.ids
        )
        with self.assertRaisesRegex(EmbouxUserError, "Leave to Nobody"):
            Transfer.create({}).action_transfer()
        self.assertEqual(self.domain.partner_id, self.tenant)
        Transfer.create({"orphan": True}).action_transfer()
        self.assertFalse(self.domain.partner_id)
