from datetime import timedelta

from odoo import fields
from odoo.tests import tagged

from .test_portal import EmbouxPortalCase


@tagged("post_install", "-at_install")
class TestBillingPortal(EmbouxPortalCase):
    """A customer whose surplus domains billing suspended sees its plan and
    usage, chooses a bigger plan, pays its invoice with the demo payment
    provider, and its domains are active again."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.starter = cls.make_plan("Starter", 2, 10)
        cls.business = cls.make_plan("Business", 10, 40)
        cls.acme.email = "billing@acme.test"
        cls.extra = cls.Domain.browse()
        for name in ("two.acme.test", "three.acme.test", "four.acme.test"):
            cls.extra |= cls.Domain.create({"name": name, "partner_id": cls.acme.id})
        cls.subscription = cls.env["emboux.mail.subscription"].create(
            {"partner_id": cls.acme.id, "plan_id": cls.starter.id}
        )
        cls.subscription.action_issue_invoice()
        invoice = cls.subscription.invoice_ids
        cls.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=invoice.ids
        ).create({})._create_payments()
        # Starter paid, four domains held: a grace period opened; thirty-one
        # days later the two newest are suspended
        cls.grace = cls.acme.emboux_grace_ids
        cls.grace.date_start = fields.Date.today() - timedelta(days=31)
        cls.grace._emboux_advance(fields.Date.today())

    @classmethod
    def make_plan(cls, name, domains, price):
        product = cls.env["product.product"].create(
            {"name": f"{name} hosting", "type": "service", "list_price": price}
        )
        return cls.env["emboux.mail.plan"].create(
            {
                "name": name,
                "domains_allowed": domains,
                "mailboxes_per_domain": 3,
                "product_id": product.id,
            }
        )

    def test_choose_a_bigger_plan_and_pay(self):
        demo = self.env["ir.module.module"]._get("payment_demo")
        if demo.state != "installed":
            self.skipTest("needs payment_demo (./setup/test installs it)")
        suspended = self.extra[1:]
        self.assertEqual(self.grace.suspended_domain_ids, suspended)
        self.assertTrue(all(suspended.mapped("suspended")))
        self.start_tour(
            "/my/email/plan", "emboux_mail_billing_tour", login=self.acme_user.login
        )
        upgrade = self.subscription.invoice_ids.filtered(
            lambda m: m.emboux_kind == "upgrade"
        )
        self.assertEqual(upgrade.emboux_plan_id, self.business)
        self.assertIn(upgrade.payment_state, ("paid", "in_payment"))
        self.assertEqual(self.acme.emboux_plan_id, self.business)
        self.assertFalse(any(suspended.mapped("suspended")))
        self.assertEqual(self.grace.state, "closed")

    def test_plan_page_is_the_tenants_own(self):
        self.login(self.globex_user)
        page = self.get("/my/email/plan")
        self.assertEqual(page.status_code, 200)
        self.assertNotIn("four.acme.test", page.text)
        self.assertNotIn("o_emboux_grace", page.text)
        # an unknown or unsold plan is refused, with nothing invoiced
        for plan_id in ("0", "abc", str(self.plan.id)):
            answer = self.post("/my/email/plan/choose", {"plan_id": plan_id})
            self.assertEqual(answer.headers["Location"].split("?")[0], "/my/email/plan")
            self.assertError(answer, 404, "This plan is not on sale.")
        self.assertFalse(self.globex.emboux_subscription_id)
        # the form's address opened with a GET leads to the plan
        page = self.follow(self.get("/my/email/plan/choose"))
        self.assertEqual(page.status_code, 200)
        self.assertEqual(len(self.texts(page, "o_emboux_note")), 1)
        self.authenticate(None, None)
        anonymous = self.get("/my/email/plan")
        self.assertIn("/web/login", anonymous.headers.get("Location", ""))

    def test_domain_list_shows_the_grace_period(self):
        self.login(self.acme_user)
        alert = self.texts(self.get("/my/email"), "o_emboux_grace")
        self.assertEqual(len(alert), 1)
        self.assertIn("four.acme.test", alert[0])
        self.assertIn("three.acme.test", alert[0])
        self.assertNotIn("two.acme.test", alert[0])

    def test_choosing_a_plan_leads_to_a_page(self):
        self.login(self.acme_user)
        choose = "/my/email/plan/choose"
        page = self.assertError(
            self.post(choose, {"plan_id": str(self.starter.id)}),
            400,
            "Starter is already the plan.",
        )
        self.assertEqual(self.texts(page, "o_emboux_plan_name"), ["Starter"])
        answer = self.post(choose, {"plan_id": str(self.business.id)})
        self.assertEqual(answer.status_code, 303)
        upgrade = self.subscription.invoice_ids.filtered(
            lambda m: m.emboux_kind == "upgrade"
        )
        self.assertEqual(upgrade.emboux_plan_id, self.business)
        self.assertEqual(answer.headers["Location"], upgrade.get_portal_url())
