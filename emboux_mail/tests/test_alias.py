from odoo.tests import tagged

from ..exceptions import EmbouxQuotaError, EmbouxValidationError
from .common import EmbouxMailCase


@tagged("post_install", "-at_install")
class TestAlias(EmbouxMailCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.domain = cls.Domain.create(
            {"name": "example.com", "partner_id": cls.tenant.id}
        )

    def test_alias_and_catch_all(self):
        alias = self.Alias.create(
            {"source": "Info@Example.com", "destination": "Boss@Elsewhere.org"}
        )
        self.assertEqual(
            (alias.source, alias.destination, alias.domain_id, alias.is_catch_all),
            ("info@example.com", "boss@elsewhere.org", self.domain, False),
        )
        catch_all = self.Alias.create(
            {"source": "@EXAMPLE.com", "destination": "info@example.com"}
        )
        self.assertTrue(catch_all.is_catch_all)
        self.assertEqual(catch_all.source, "@example.com")
        self.assertEqual(self.domain.alias_count, 2)

    def test_bad_input(self):
        for vals in [
            {"source": "no-at", "destination": "a@example.com"},
            {"source": "a@example.com", "destination": "nope"},
            {"source": "@", "destination": "a@example.com"},
        ]:
            with self.subTest(vals=vals), self.assertRaises(EmbouxValidationError):
                self.Alias.create(vals)
        with self.assertEmbouxError(
            EmbouxValidationError, "Email does not belong to domain", 400
        ):
            self.Alias.create(
                {
                    "source": "a@other.org",
                    "destination": "a@example.com",
                    "domain_id": self.domain.id,
                }
            )

    def test_duplicate_source(self):
        self.Alias.create({"source": "a@example.com", "destination": "b@example.com"})
        with self.assertEmbouxError(
            EmbouxValidationError, "Alias source already exists", 400
        ):
            self.Alias.create(
                {"source": "A@example.com", "destination": "c@example.com"}
            )

    def test_quota_per_destination_counts_catch_all(self):
        target = "boss@example.com"
        self.Alias.create({"source": "a@example.com", "destination": target})
        self.Alias.create({"source": "@example.com", "destination": target})
        with self.assertEmbouxError(EmbouxQuotaError, "Alias quota exceeded: 2/2", 403):
            self.Alias.create({"source": "c@example.com", "destination": target})
        # another destination has its own allowance
        self.Alias.create({"source": "c@example.com", "destination": "x@example.com"})
