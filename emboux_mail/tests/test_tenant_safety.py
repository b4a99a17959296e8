"""The trust model in the models: ownership proof, names no customer may
claim, suspension reasons, storage ceilings, the password policy and the
security log (the REST API and portal tests drive the same rules)."""

from datetime import timedelta

from odoo import fields
from odoo.exceptions import AccessError

from ..exceptions import EmbouxForbidden, EmbouxQuotaError, EmbouxValidationError
from ..services import dns_checker
from .common import EmbouxMailCase, FakeDns


class TestTenantSafety(FakeDns, EmbouxMailCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.plan.domains_allowed = 0
        cls.other = cls.make_tenant("Other")
        cls.Log = cls.env["emboux.mail.security.log"]

    def customer_domain(self, name, tenant=None):
        return self.Domain._emboux_create_for_customer(tenant or self.tenant, name)

    def txt(self, domain, token=None):
        """A zone publishing ``domain``'s ownership record."""
        value = dns_checker.VERIFICATION_PREFIX + (token or domain.verification_token)
        return {(domain.name, "TXT"): ['"v=spf1 -all"', f'"{value}"']}

    # -- ownership proof ---------------------------------------------------------
    def test_operator_domains_are_vouched_customer_domains_are_not(self):
        vouched = self.make_domain("vouched.example")
        self.assertEqual((vouched.verified, vouched.verified_by), (True, "operator"))
        self.assertFalse(vouched.verification_token)
        pending = self.customer_domain("gmail.com")
        self.assertFalse(pending.verified)
        self.assertTrue(pending.verification_token)
        self.assertEqual(
            pending.verification_record,
            "emboux-verification=" + pending.verification_token,
        )
        self.assertGreater(pending.verification_next_at, fields.Datetime.now())

    def test_verify_finds_the_record_and_logs_it(self):
        domain = self.customer_domain("proof.example")
        with self.fake_dns({}):
            domain.action_verify()
        self.assertFalse(domain.verified)
        self.assertEqual(domain.verification_status, "missing")
        with self.fake_dns(self.txt(domain, token="someone-else")):
            domain.action_verify()
        self.assertEqual(
            (domain.verified, domain.verification_status), (False, "incorrect")
        )
        with self.fake_dns(self.txt(domain)):
            domain.action_verify()
        self.assertEqual((domain.verified, domain.verified_by), (True, "dns"))
        self.assertFalse(domain.verification_next_at)
        log = self.Log.search(
            [("event", "=", "domain_verified"), ("res_id", "=", domain.id)]
        )
        self.assertEqual(len(log), 1)
        self.assertEqual(
            (log.partner_id, log.user_id, log.channel),
            (self.tenant, self.env.user, "system"),
        )

    def test_scheduled_check_backs_off_then_verifies(self):
        domain = self.customer_domain("later.example")
        not_due = self.customer_domain("notdue.example")
        now = fields.Datetime.now()
        (domain | not_due).verification_next_at = now + timedelta(hours=1)
        domain.verification_next_at = now - timedelta(minutes=1)
        delays = []
        with self.fake_dns({}):
            for _attempt in range(3):
                self.assertEqual(self.Domain._emboux_verify_due(10), domain)
                delays.append(
                    domain.verification_next_at - domain.verification_checked_at
                )
                domain.verification_next_at = fields.Datetime.now() - timedelta(
                    seconds=1
                )
        self.assertEqual(domain.verification_attempts, 3)
        self.assertEqual(delays, [timedelta(minutes=15 * 2**n) for n in range(3)])
        self.assertFalse(not_due.verification_checked_at)
        with self.fake_dns(self.txt(domain)):
            self.Domain._cron_check_dns()
        self.assertTrue(domain.verified)
        self.assertFalse(not_due.verified)

    def test_subdomain_of_own_verified_wildcard_is_verified(self):
        parent = self.make_domain("wild.example")
        parent.is_wildcard = True
        child = self.customer_domain("shop.wild.example")
        self.assertEqual(child.parent_id, parent)
        self.assertEqual((child.verified, child.verified_by), (True, "parent"))
        # an unverified wildcard passes nothing on
        pending = self.customer_domain("mine.example")
        pending.is_wildcard = True
        grandchild = self.customer_domain("a.mine.example")
        self.assertEqual(grandchild.parent_id, pending)
        self.assertFalse(grandchild.verified)

    def test_another_tenants_wildcard_adopts_nothing(self):
        parent = self.make_domain("theirs.example", tenant=self.other)
        parent.is_wildcard = True
        # the operator may place the name deliberately: it is not adopted
        placed = self.make_domain("x.theirs.example")
        self.assertFalse(placed.parent_id)

    # -- names never available ---------------------------------------------------
    def test_public_suffixes_are_refused_to_customers(self):
        for name in ("co.uk", "github.io", "Blogspot.COM"):
            with self.subTest(name=name):
                with self.assertEmbouxError(
                    EmbouxValidationError, "Domain is a public suffix", 400
                ):
                    self.customer_domain(name)
        # a name under a public suffix is fine
        self.assertTrue(self.customer_domain("mine.github.io"))

    def test_names_at_or_under_another_partys_domain_are_refused(self):
        self.make_domain("theirs.example", tenant=self.other)
        orphan = self.make_domain("orphan.example")
        orphan._emboux_transfer_owner(self.env["res.partner"])
        for name in ("theirs.example", "mail.theirs.example", "a.b.orphan.example"):
            with self.subTest(name=name):
                with self.assertEmbouxError(
                    EmbouxValidationError, "Domain already exists", 400
                ):
                    self.customer_domain(name)
        # under its own domain, and above another's, a customer may add names
        self.make_domain("mine.example")
        self.assertTrue(self.customer_domain("shop.mine.example"))
        self.assertTrue(self.customer_domain("example.net"))

    # -- suspension reasons ------------------------------------------------------
    def test_customer_cannot_lift_an_operators_suspension(self):
        domain = self.make_domain()
        domain.action_suspend()
        self.assertEqual(domain.suspension_reason, "operator")
        # suspending again as the customer keeps the operator's reason
        domain._emboux_suspend("customer")
        self.assertEqual(domain.suspension_reason, "operator")
        with self.assertEmbouxError(
            EmbouxForbidden, "Domain suspended by the operator", 403
        ):
            domain._emboux_activate("customer")
        domain.write({"suspension_reason": "billing"})
        with self.assertEmbouxError(
            EmbouxForbidden, "Domain suspended for billing", 403
        ):
            domain._emboux_activate("customer")
        self.assertTrue(domain.suspended)
        domain.action_activate()
        self.assertEqual((domain.suspended, domain.suspension_reason), (False, False))

    def test_customer_lifts_its_own_suspension_operator_outranks_it(self):
        domain = self.make_domain()
        domain._emboux_suspend("customer")
        domain._emboux_activate("customer")
        self.assertFalse(domain.suspended)
        domain._emboux_suspend("customer")
        domain._emboux_suspend("operator")
        self.assertEqual(domain.suspension_reason, "operator")
        events = self.Log.search([("res_id", "=", domain.id)], order="id").mapped(
            lambda log: (log.event, log.detail)
        )
        self.assertEqual(
            events,
            [
                ("domain_verified", "Operator"),
                ("domain_suspended", "Customer"),
                ("domain_activated", "Customer"),
                ("domain_suspended", "Customer"),
                ("domain_suspended", "Operator"),
            ],
        )

    def test_suspended_domain_takes_nothing_new_but_deletes(self):
        domain = self.make_domain()
        mailbox = self.Mailbox.create(
            {"email": "a@example.com", "password": "Good-pass-123"}
        )
        alias = self.Alias.create(
            {"source": "b@example.com", "destination": "a@example.com"}
        )
        domain.action_suspend()
        for create in (
            lambda: self.Mailbox.create({"email": "c@example.com"}),
            lambda: self.Alias.create(
                {"source": "d@example.com", "destination": "a@example.com"}
            ),
            lambda: mailbox.write({"password": "Another-pass-456"}),
            lambda: alias.write({"destination": "x@elsewhere.example"}),
        ):
            with self.assertEmbouxError(EmbouxForbidden, "Domain suspended", 403):
                create()
        self.assertTrue(mailbox._emboux_check_password("Good-pass-123"))
        alias.unlink()
        mailbox.unlink()
        self.assertFalse(domain.mailbox_ids)
        self.assertFalse(domain.alias_ids)

    # -- storage ceilings --------------------------------------------------------
    def test_customer_quota_stays_within_the_plan(self):
        self.plan.max_quota_mb = 2048
        self.make_domain()
        mailbox = self.Mailbox.create({"email": "a@example.com"})
        for quota in (0, 2049, 2147483647):
            with self.subTest(quota=quota):
                with self.assertEmbouxError(
                    EmbouxQuotaError,
                    "Storage quota exceeds plan maximum (2048 MB)",
                    403,
                ):
                    mailbox._emboux_set_quota(quota, "customer")
        mailbox._emboux_set_quota(2048, "customer")
        self.assertEqual(mailbox.quota_mb, 2048)
        mailbox._emboux_set_quota(0, "operator")
        self.assertEqual(mailbox.quota_mb, 0)

    # -- password policy ---------------------------------------------------------
    def test_one_password_policy(self):
        self.make_domain()
        mailbox = self.Mailbox.create({"email": "sales@example.com"})
        for password, message in (
            ("a", "at least 10 characters"),
            ("          ", "type a password"),
            ("x" * 5000, "at most 1024 bytes"),
            ("é" * 513, "at most 1024 bytes"),
            ("\ud800" + "x" * 12, "not valid text"),
            ("line\nbreak-pass", "control characters"),
            ("my-sales-password", "the mailbox's name"),
        ):
            with self.subTest(message=message):
                with self.assertRaises(EmbouxValidationError) as raised:
                    mailbox.password = password
                error = raised.exception
                self.assertIn(message, str(error))
                self.assertEqual((error.status, error.field), (422, "password"))
        self.env["ir.config_parameter"].set_param(
            "emboux_mail.password_min_length", "20"
        )
        with self.assertRaises(EmbouxValidationError):
            mailbox.password = "nineteen-characters"
        generated = mailbox._emboux_generate_password()
        self.assertEqual(len(generated), 20)
        mailbox.password = generated
        self.assertTrue(mailbox._emboux_check_password(generated))

    def test_wizard_uses_the_policy(self):
        self.make_domain()
        mailbox = self.Mailbox.create({"email": "a@example.com"})
        wizard = self.env["emboux.mail.mailbox.password"].with_context(
            active_id=mailbox.id
        )
        with self.assertRaises(EmbouxValidationError):
            wizard.create(
                {
                    "mode": "type",
                    "new_password": "short-1",
                    "confirm_password": "short-1",
                }
            )

    # -- access ------------------------------------------------------------------
    def test_operator_actions_need_write_access(self):
        domain = self.make_domain()
        portal = self.env["res.users"].create(
            {
                "name": "Portal",
                "login": "portal-safety",
                "groups_id": [(6, 0, [self.env.ref("base.group_portal").id])],
            }
        )
        as_portal = domain.with_user(portal)
        for action in (
            "action_verify",
            "action_vouch",
            "action_suspend",
            "action_activate",
        ):
            with self.subTest(action=action), self.assertRaises(AccessError):
                getattr(as_portal, action)()

    def test_owner_transfer_is_logged(self):
        domain = self.make_domain()
        self.Key._emboux_generate({"partner_id": self.other.id})
        domain._emboux_transfer_owner(self.other)
        log = self.Log.search([("event", "=", "owner_transferred")])
        self.assertEqual(log.res_id, domain.id)
        self.assertEqual(
            log.detail,
            f"from {self.tenant.emboux_partner_ref} to {self.other.emboux_partner_ref}",
        )
