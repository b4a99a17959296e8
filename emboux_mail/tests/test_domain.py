from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from ..exceptions import EmbouxQuotaError, EmbouxUserError, EmbouxValidationError
from .common import EmbouxMailCase


@tagged("post_install", "-at_install")
class TestDomain(EmbouxMailCase):
    def test_name_is_normalised(self):
        domain = self.make_domain("  Bücher.Example.  ")
        self.assertEqual(domain.name, "xn--bcher-kva.example")
        self.assertEqual(
            domain.partner_id.emboux_partner_ref, f"partner_{self.tenant.id}"
        )

    def test_invalid_names_name_field_and_value(self):
        for bad in [
            "",
            "   ",
            "localhost",
            "-bad.com",
            "bad-.com",
            "a..b.com",
            "exa mple.com",
            "x" * 64 + ".com",
            "example.123",
            "under_score.com",
            "'; DROP TABLE emboux_mail_domain; --.com",
        ]:
            with (
                self.subTest(bad=bad),
                self.assertRaises(EmbouxValidationError) as raised,
            ):
                self.make_domain(bad)
            self.assertEqual(raised.exception.status, 422)
            self.assertIn("Domain:", str(raised.exception))
            self.assertIn(repr(bad), str(raised.exception))
        with self.assertRaises(EmbouxValidationError):
            self.Domain.create({"name": False, "partner_id": self.tenant.id})

    def test_duplicate_refused_whatever_the_spelling(self):
        self.make_domain("bücher.example")
        for same in ["bücher.example", "BÜCHER.EXAMPLE.", "xn--bcher-kva.example"]:
            with (
                self.subTest(same=same),
                self.assertEmbouxError(
                    EmbouxValidationError, "Domain already exists", 400
                ),
            ):
                self.make_domain(same)
        with self.assertEmbouxError(
            EmbouxValidationError, "Domain already exists", 400
        ):
            self.Domain.create(
                [{"name": "twice.com", "partner_id": self.tenant.id}] * 2
            )

    def test_domain_quota_and_counter(self):
        domains = self.make_domain("a.com") | self.make_domain("b.com")
        self.assertEqual(self.key.domains_used, 2)
        self.make_domain("c.com")
        with self.assertEmbouxError(
            EmbouxQuotaError, "Domain quota exceeded: 3/3", 403
        ):
            self.make_domain("d.com")
        self.assertEqual(self.key.domains_used, 3)
        domains.unlink()
        self.assertEqual(self.key.domains_used, 1)
        self.assertEqual(self.tenant.emboux_domain_count, 1)
        self.make_domain("d.com")
        self.assertEqual(self.key.domains_used, 2)

    def test_zero_means_unlimited(self):
        self.key.write({"quota_override": True, "domains_allowed": 0})
        for index in range(5):
            self.make_domain(f"d{index}.com")
        self.assertEqual(self.key.domains_used, 5)

    def test_cascade_delete(self):
        domain = self.make_domain()
        mailbox = self.Mailbox.create({"email": "a@example.com", "password": "x" * 10})
        alias = self.Alias.create(
            {"source": "@example.com", "destination": "a@example.com"}
        )
        domain.unlink()
        self.assertFalse(mailbox.exists())
        self.assertFalse(alias.exists())
        self.assertEqual(self.key.domains_used, 0)

    def test_suspend_and_activate(self):
        domain = self.make_domain()
        domain.action_suspend()
        self.assertTrue(domain.suspended)
        domain.action_activate()
        self.assertFalse(domain.suspended)

    def test_rename_refused(self):
        domain = self.make_domain()
        with self.assertRaises(EmbouxUserError):
            domain.name = "other.com"

    def test_owner_transfer_moves_counters(self):
        other = self.make_tenant("Other")
        domain = self.make_domain()
        with self.assertEmbouxError(
            EmbouxUserError,
            f"No active api_key for partner_ref=partner_{other.id}",
            400,
        ):
            domain._emboux_transfer_owner(other)
        other_key, _token = self.Key._emboux_generate({"partner_id": other.id})
        mailbox = self.Mailbox.create({"email": "a@example.com", "password": "x" * 10})
        previous = domain._emboux_transfer_owner(other)
        self.assertEqual(previous, self.tenant)
        self.assertEqual(domain.partner_id, other)
        self.assertEqual(mailbox.partner_id, other)
        self.assertEqual((self.key.domains_used, other_key.domains_used), (0, 1))
        # an expired or revoked key does not count as active
        other_key.active = False
        with self.assertRaises(EmbouxUserError):
            self.make_domain("z.com")._emboux_transfer_owner(other)

    def test_owner_transfer_to_nobody_orphans(self):
        domain = self.make_domain()
        domain._emboux_transfer_owner(self.env["res.partner"])
        self.assertFalse(domain.partner_id)
        self.assertEqual(self.key.domains_used, 0)

    def test_writing_the_owner_applies_the_transfer_rules(self):
        other = self.make_tenant("Other")
        domain = self.make_domain()
        with self.assertRaises(EmbouxUserError):
            domain.partner_id = other

    def test_subdomain_linked_to_wildcard_parent(self):
        self.key.write({"quota_override": True, "domains_allowed": 0})
        parent = self.make_domain("parent.com")
        plain = self.make_domain("x.parent.com")
        self.assertFalse(plain.parent_id)
        parent.is_wildcard = True
        sub = self.make_domain("shop.parent.com")
        deep = self.make_domain("a.b.parent.com")
        self.assertEqual(sub.parent_id, parent)
        self.assertEqual(deep.parent_id, parent)
        with self.assertRaises(EmbouxValidationError):
            self.make_domain("other.net").parent_id = parent

    def test_hosting_user_cannot_manage_keys_or_plans(self):
        user = new_test_user(
            self.env, login="hosting_user", groups="emboux_mail.group_emboux_mail_user"
        )
        domain = self.make_domain().with_user(user)
        self.assertEqual(domain.name, "example.com")
        with self.assertRaises(AccessError):
            self.Key.with_user(user).create({"partner_id": self.tenant.id})
        with self.assertRaises(AccessError):
            self.plan.with_user(user).write({"mailboxes_per_domain": 99})

    def test_other_company_domains_are_hidden(self):
        company_b = self.env["res.company"].create({"name": "Company B"})
        domain_b = self.Domain.create(
            {
                "name": "b-only.com",
                "partner_id": self.tenant.id,
                "company_id": company_b.id,
            }
        )
        user = new_test_user(
            self.env, login="hosting_a", groups="emboux_mail.group_emboux_mail_user"
        )
        self.assertFalse(self.Domain.with_user(user).search([("id", "=", domain_b.id)]))
