import datetime
from unittest.mock import patch

from odoo import fields
from odoo.tests import tagged

from ..exceptions import EmbouxForbidden, EmbouxValidationError
from ..services import hashing
from .common import EmbouxMailCase


@tagged("post_install", "-at_install")
class TestApiKey(EmbouxMailCase):
    def test_token_is_hashed_and_never_read_back(self):
        self.assertTrue(self.token.startswith("emb_"))
        self.assertEqual(self.Key._emboux_check_token(self.token), self.key)
        self.env.invalidate_all()
        self.assertFalse(self.key.token)
        self.assertFalse(self.key.read(["token"])[0]["token"])
        self.assertNotIn("token_hash", self.Key._fields)
        self.assertNotStoredAnywhere(self.token)

    def test_a_token_is_hashed_once_per_process(self):
        """pbkdf2 runs at a token's first use only; a wrong token, or the
        same token against another stored hash, is checked in full."""
        token, other = hashing.generate_token(), hashing.generate_token()
        stored, renewed = hashing.hash_token(token), hashing.hash_token(token)
        with patch.object(
            hashing.TOKEN_CONTEXT, "verify", wraps=hashing.TOKEN_CONTEXT.verify
        ) as verify:
            self.assertTrue(hashing.verify_token(token, stored))
            self.assertTrue(hashing.verify_token(token, stored))
            self.assertEqual(verify.call_count, 1)
            self.assertFalse(hashing.verify_token(other, stored))
            self.assertFalse(hashing.verify_token(other, stored))
            self.assertTrue(hashing.verify_token(token, renewed))
            self.assertEqual(verify.call_count, 4)
            self.assertFalse(hashing.verify_token(token, ""))
            self.assertEqual(verify.call_count, 4)

    def test_auth_failures_have_the_api_texts(self):
        with self.assertEmbouxError(EmbouxForbidden, "Invalid API key", 403):
            self.Key._emboux_check_token(self.token + "x")
        with self.assertEmbouxError(EmbouxForbidden, "Invalid API key", 403):
            self.Key._emboux_check_token("")
        self.key.expires_at = fields.Datetime.now() - datetime.timedelta(minutes=1)
        with self.assertEmbouxError(EmbouxForbidden, "API key has expired", 403):
            self.Key._emboux_check_token(self.token)
        self.key.action_revoke()
        with self.assertEmbouxError(EmbouxForbidden, "API key is deactivated", 403):
            self.Key._emboux_check_token(self.token)
        self.assertEqual(self.key.state, "revoked")

    def test_caller_supplied_token_must_be_unique(self):
        token = "emb_caller_supplied_token_0001"
        self.Key.create({"partner_id": self.tenant.id, "token": token})
        with self.assertEmbouxError(
            EmbouxValidationError, "API key already exists", 400
        ):
            self.Key.create({"partner_id": self.tenant.id, "token": token})
        with self.assertRaises(EmbouxValidationError):
            self.Key.create({"partner_id": self.tenant.id, "token": "short"})

    def test_quotas_from_plan_unless_overridden(self):
        self.assertEqual(
            (self.key.domains_allowed, self.key.mailboxes_per_domain),
            (3, 2),
        )
        self.plan.domains_allowed = 7
        self.assertEqual(self.key.domains_allowed, 7)
        own = self.Key.create(
            {"partner_id": self.tenant.id, "domains_allowed": 1, "token": "t" * 20}
        )
        self.assertTrue(own.quota_override)
        self.plan.domains_allowed = 9
        self.assertEqual(own.domains_allowed, 1)

    def test_key_without_plan_takes_settings_defaults(self):
        self.env["ir.config_parameter"].set_param(
            "emboux_mail.default_domains_allowed", 4
        )
        loner = self.env["res.partner"].create({"name": "Loner", "is_company": True})
        key, _token = self.Key._emboux_generate({"partner_id": loner.id})
        self.assertEqual(key.domains_allowed, 4)
        self.assertEqual(loner.emboux_partner_ref, f"partner_{loner.id}")

    def test_partner_ref_unique(self):
        other = self.make_tenant("Other")
        other._emboux_tenant()
        with self.assertRaises(EmbouxValidationError) as raised:
            other.emboux_partner_ref = self.tenant.emboux_partner_ref
        self.assertIn(self.tenant.emboux_partner_ref, str(raised.exception))
