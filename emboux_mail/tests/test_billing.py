import threading
from datetime import date, timedelta

from freezegun import freeze_time

from odoo import fields
from odoo.tests import TransactionCase, tagged

from ..exceptions import EmbouxUserError
from .common import CommittedWork, EmbouxHostingSetup


@tagged("post_install", "-at_install")
class BillingCase(EmbouxHostingSetup, TransactionCase):
    """Plans sold as products, a customer with five domains on Business
    (after installation: invoices need the chart of accounts Invoicing
    loads once every module is installed)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_hosting()
        Plan = cls.env["emboux.mail.plan"]
        cls.business = Plan.create(
            {
                "name": "Business",
                "domains_allowed": 5,
                "mailboxes_per_domain": 10,
                "product_id": cls._product("Business hosting", 40.0).id,
            }
        )
        cls.starter = Plan.create(
            {
                "name": "Starter",
                "domains_allowed": 2,
                "mailboxes_per_domain": 5,
                "product_id": cls._product("Starter hosting", 10.0).id,
            }
        )
        cls.free = Plan.create({"name": "Free", "domains_allowed": 1})
        params = cls.env["ir.config_parameter"].sudo()
        params.set_param("emboux_mail.fallback_plan_id", cls.free.id)
        cls.customer = cls.env["res.partner"].create(
            {
                "name": "Northwind",
                "is_company": True,
                "email": "billing@northwind.example",
            }
        )
        cls.subscription = cls.env["emboux.mail.subscription"].create(
            {"partner_id": cls.customer.id, "plan_id": cls.business.id}
        )
        cls.Grace = cls.env["emboux.mail.grace"]

    @classmethod
    def _product(cls, name, price):
        return cls.env["product.product"].create(
            {"name": name, "type": "service", "list_price": price}
        )

    def _pay(self, invoice):
        self.assertEqual(invoice.state, "posted")
        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=invoice.ids
        ).create({})._create_payments()
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))

    def _days(self, start, count, runs_per_day=2):
        """Run the daily jobs from ``start`` for ``count`` days, twice a day
        as a second worker or a manual run would."""
        for offset in range(count):
            for _run in range(runs_per_day):
                with freeze_time(start + timedelta(days=offset)):
                    self.env["emboux.mail.subscription"]._cron_issue_invoices()
                    self.env["emboux.mail.subscription"]._cron_billing_check()

    def _grace_mails(self, grace, subject_part):
        return self.env["mail.mail"].search(
            [
                ("model", "=", "emboux.mail.grace"),
                ("res_id", "=", grace.id),
                ("subject", "ilike", subject_part),
            ]
        )

    def _start_paid_business(self, day):
        """Business paid from ``day``, and five domains, the oldest one
        suspended by an operator."""
        with freeze_time(day):
            self.subscription.action_issue_invoice()
            invoice = self.subscription.invoice_ids
            self.assertEqual(invoice.emboux_period_start, day)
            self.assertEqual(invoice.amount_untaxed, 40.0)
            self._pay(invoice)
            self.assertEqual(self.customer.emboux_plan_id, self.business)
            self.assertEqual(self.subscription.paid_until, date(2027, 2, 1))
        domains = self.Domain
        for number in range(1, 6):
            domains |= self.Domain.create(
                {
                    "name": f"d{number}.northwind.example",
                    "partner_id": self.customer.id,
                    "verified": True,
                }
            )
        domains[0].action_suspend()
        self.assertEqual(self.customer.emboux_domain_count, 5)
        return domains


@tagged("post_install", "-at_install")
class TestBillingLifecycle(BillingCase):
    def test_downgrade_grace_suspension_and_upgrade(self):
        domains = self._start_paid_business(date(2027, 1, 1))
        operator_suspended, newest_three = domains[0], domains[2:]

        with freeze_time(date(2027, 1, 10)):
            downgrade = self.subscription._emboux_choose_plan(self.starter)
        # the cheaper plan is invoiced for the period after the paid one
        self.assertEqual(downgrade.emboux_plan_id, self.starter)
        self.assertEqual(downgrade.emboux_period_start, date(2027, 2, 1))
        self.assertEqual(downgrade.amount_untaxed, 10.0)
        with freeze_time(date(2027, 1, 20)):
            self._pay(downgrade)
            # still Business until the paid month ends
            self.assertEqual(self.customer.emboux_plan_id, self.business)
        self.assertFalse(self.Grace.search([("partner_id", "=", self.customer.id)]))

        start = date(2027, 2, 1)
        self._days(start, 30)
        self.assertEqual(self.customer.emboux_plan_id, self.starter)
        grace = self.Grace.search([("partner_id", "=", self.customer.id)])
        self.assertEqual(len(grace), 1)
        self.assertEqual(grace.date_start, start)
        self.assertEqual(grace.state, "open")
        # reminders on day 7, 15 and 22, once each although the job ran twice a day
        reminders = grace.step_ids.filtered(lambda s: s.step.startswith("reminder"))
        self.assertEqual(
            sorted(reminders.mapped("step")),
            ["reminder_15", "reminder_22", "reminder_7"],
        )
        self.assertEqual(
            sorted(step.date.date() for step in reminders),
            [
                start + timedelta(days=7),
                start + timedelta(days=15),
                start + timedelta(days=22),
            ],
        )
        self.assertEqual(len(self._grace_mails(grace, "over your plan")), 3)
        self.assertTrue(all(not d.suspended for d in newest_three))

        # day 30: the three newest, for billing; the operator's untouched
        self._days(start + timedelta(days=30), 2)
        self.assertEqual(grace.state, "suspended")
        self.assertEqual(grace.suspended_domain_ids, newest_three)
        self.assertEqual(set(newest_three.mapped("suspension_reason")), {"billing"})
        self.assertTrue(all(newest_three.mapped("suspended")))
        self.assertEqual(operator_suspended.suspension_reason, "operator")
        self.assertFalse(domains[1].suspended)
        self.assertEqual(len(self._grace_mails(grace, "suspended for billing")), 1)
        activity = self.customer.activity_ids
        self.assertEqual(len(activity), 1)
        self.assertEqual(activity.user_id, self.subscription.user_id)
        self.assertIn("d5.northwind.example", activity.note)
        steps = self.customer.message_ids.mapped("body")
        self.assertTrue(any("Grace period opened" in body for body in steps))
        self.assertTrue(any("suspended for billing" in body for body in steps))

        # an upgrade, once paid, re-activates exactly those three
        with freeze_time(date(2027, 3, 5)):
            upgrade = self.subscription._emboux_choose_plan(self.business)
            self.assertEqual(upgrade.emboux_kind, "upgrade")
            self.assertTrue(newest_three[0].suspended)
            self._pay(upgrade)
        self.assertEqual(upgrade.emboux_period_start, date(2027, 3, 5))
        self.assertEqual(self.customer.emboux_plan_id, self.business)
        self.assertEqual(grace.state, "closed")
        self.assertFalse(any(newest_three.mapped("suspended")))
        self.assertTrue(operator_suspended.suspended)
        self.assertEqual(operator_suspended.suspension_reason, "operator")
        self.assertEqual(len(self._grace_mails(grace, "active again")), 1)

    def test_unpaid_period_falls_back_then_payment_restores(self):
        domains = self._start_paid_business(date(2027, 1, 1))
        # the renewal is issued seven days ahead and left unpaid
        self._days(date(2027, 1, 20), 12, runs_per_day=1)
        renewal = self.subscription._emboux_open_invoices()
        self.assertEqual(len(renewal), 1)
        self.assertEqual(renewal.emboux_period_start, date(2027, 2, 1))
        self.assertEqual(renewal.invoice_date, date(2027, 1, 25))
        self.assertEqual(self.customer.emboux_plan_id, self.business)
        # tolerance: three days past the paid month, Business still applies
        self._days(date(2027, 2, 1), 3, runs_per_day=1)
        self.assertEqual(self.subscription.state, "tolerance")
        self.assertFalse(self.Grace.search([("partner_id", "=", self.customer.id)]))
        # then the fallback plan (one domain): a grace period
        lapse = date(2027, 2, 4)
        self._days(lapse, 31)
        self.assertEqual(self.customer.emboux_plan_id, self.free)
        grace = self.Grace.search([("partner_id", "=", self.customer.id)])
        self.assertEqual(grace.date_start, lapse)
        self.assertEqual(grace.state, "suspended")
        # five held, one allowed: the four newest, the operator's already off
        self.assertEqual(grace.suspended_domain_ids, domains[1:])
        self.assertEqual(len(self._grace_mails(grace, "over your plan")), 3)

        with freeze_time(lapse + timedelta(days=32)):
            self._pay(renewal)
            self.assertEqual(self.subscription.state, "paid")
        # paid late: the month starts on the day of payment, once (Odoo
        # reports it paid again after a bank reconciliation, days later)
        self.assertEqual(renewal.emboux_period_start, lapse + timedelta(days=32))
        with freeze_time(lapse + timedelta(days=40)):
            renewal._invoice_paid_hook()
        self.assertEqual(renewal.emboux_period_start, lapse + timedelta(days=32))
        self.assertEqual(renewal.emboux_paid_on, lapse + timedelta(days=32))
        self.assertEqual(self.customer.emboux_plan_id, self.business)
        self.assertEqual(grace.state, "closed")
        self.assertFalse(any(domains[1:].mapped("suspended")))
        self.assertEqual(domains[0].suspension_reason, "operator")


@tagged("post_install", "-at_install")
class TestBillingRules(BillingCase):
    def test_credit_note_is_taken_back_by_the_daily_check(self):
        self._start_paid_business(date(2027, 1, 1))
        invoice = self.subscription.invoice_ids
        with freeze_time(date(2027, 1, 10)):
            reversal = (
                self.env["account.move.reversal"]
                .with_context(active_model="account.move", active_ids=invoice.ids)
                .create({"journal_id": invoice.journal_id.id})
            )
            reversal.refund_moves()
            credit_note = self.env["account.move"].search(
                [("reversed_entry_id", "=", invoice.id)]
            )
            credit_note.action_post()
            # the payment is un-reconciled and the credit note settles the invoice
            invoice.line_ids.remove_move_reconcile()
            (invoice.line_ids | credit_note.line_ids).filtered(
                lambda line: line.account_id.account_type == "asset_receivable"
            ).reconcile()
            self.assertEqual(invoice.payment_state, "reversed")
            self.assertEqual(self.subscription.paid_until, False)
            self.env["emboux.mail.subscription"]._cron_billing_check()
        self.assertEqual(self.customer.emboux_plan_id, self.free)
        grace = self.Grace.search([("partner_id", "=", self.customer.id)])
        self.assertEqual(grace.state, "open")

    def test_operator_extends_and_cancels(self):
        domains = self._start_paid_business(date(2027, 1, 1))
        self.env["ir.config_parameter"].sudo().set_param(
            "emboux_mail.fallback_plan_id", self.starter.id
        )
        self.subscription.invoice_ids.line_ids.remove_move_reconcile()
        start = date(2027, 1, 2)
        self._days(start, 1)
        grace = self.Grace.search([("partner_id", "=", self.customer.id)])
        self.assertEqual(grace.date_suspend, start + timedelta(days=30))
        wizard = (
            self.env["emboux.mail.grace.extend"]
            .with_context(active_id=grace.id)
            .create({"days": 10})
        )
        wizard.action_extend()
        self.assertEqual(grace.date_suspend, start + timedelta(days=40))
        wizard.days = 0
        with self.assertRaises(EmbouxUserError):
            wizard.action_extend()
        self.assertEqual(grace.date_suspend, start + timedelta(days=40))
        self._days(start + timedelta(days=30), 1)
        self.assertEqual(grace.state, "open")
        self._days(start + timedelta(days=40), 1)
        self.assertEqual(grace.state, "suspended")
        self.assertTrue(domains[-1].suspended)
        grace.action_cancel()
        self.assertEqual(grace.state, "waived")
        self.assertFalse(domains[-1].suspended)
        # waived: no new grace period while the customer stays over its quota
        self._days(start + timedelta(days=41), 1)
        self.assertEqual(
            self.Grace.search_count([("partner_id", "=", self.customer.id)]), 1
        )

    def test_billing_never_lifts_another_suspension(self):
        domains = self._start_paid_business(date(2027, 1, 1))
        self.env["ir.config_parameter"].sudo().set_param(
            "emboux_mail.fallback_plan_id", self.starter.id
        )
        self.subscription.invoice_ids.line_ids.remove_move_reconcile()
        self._days(date(2027, 1, 2), 1)
        grace = self.Grace.search([("partner_id", "=", self.customer.id)])
        with freeze_time(date(2027, 2, 5)):
            grace._emboux_advance(date(2027, 2, 5))
        self.assertEqual(grace.suspended_domain_ids, domains[2:])
        # an operator takes one of them over before the customer is back
        domains[-1].action_activate()
        domains[-1].action_suspend()
        # deleting domains closes the grace period at once
        (domains[1] | domains[2] | domains[3]).unlink()
        self.assertEqual(grace.state, "closed")
        with freeze_time(date(2027, 2, 6)):
            self.env["emboux.mail.subscription"]._cron_billing_check()
        self.assertEqual(grace.state, "closed")
        self.assertEqual(domains[-1].suspension_reason, "operator")
        self.assertTrue(domains[-1].suspended)
        self.assertEqual(domains[0].suspension_reason, "operator")

    def test_backend_change_plan_and_renewal_of_the_next_plan(self):
        self._start_paid_business(date(2027, 1, 1))
        with freeze_time(date(2027, 1, 12)):
            wizard = (
                self.env["emboux.mail.subscription.change"]
                .with_context(active_id=self.subscription.id)
                .create({"plan_id": self.starter.id})
            )
            action = wizard.action_change()
        invoice = self.env["account.move"].browse(action["res_id"])
        self.assertEqual(
            (invoice.emboux_plan_id, invoice.emboux_kind, invoice.emboux_period_start),
            (self.starter, "renewal", date(2027, 2, 1)),
        )
        self.assertEqual(self.subscription.plan_id, self.starter)
        # an unpaid invoice is there: no second one is issued meanwhile
        self._days(date(2027, 1, 25), 3, runs_per_day=1)
        self.assertEqual(self.subscription._emboux_open_invoices(), invoice)
        with freeze_time(date(2027, 1, 26)):
            self._pay(invoice)
        # the next renewal bills the new plan, from the end of the paid one
        self._days(date(2027, 2, 22), 1, runs_per_day=1)
        renewal = self.subscription._emboux_open_invoices()
        self.assertEqual(
            (renewal.emboux_plan_id, renewal.emboux_period_start),
            (self.starter, date(2027, 3, 1)),
        )
        self.assertEqual(self.customer.emboux_plan_id, self.starter)

    def test_choosing_the_paid_plan_again_drops_the_downgrade(self):
        self._start_paid_business(date(2027, 1, 1))
        with freeze_time(date(2027, 1, 12)):
            downgrade = self.subscription._emboux_choose_plan(self.starter)
            self.assertFalse(self.subscription._emboux_choose_plan(self.business))
            with self.assertRaises(EmbouxUserError):
                self.subscription._emboux_choose_plan(self.business)
        self.assertEqual(downgrade.state, "cancel")
        self.assertEqual(self.subscription.plan_id, self.business)
        self.assertFalse(self.subscription._emboux_open_invoices())


@tagged("post_install", "-at_install")
class TestGraceWorkers(CommittedWork, TransactionCase):
    """Two workers run the same grace period's day at once, each in a
    transaction of its own: one reminder is recorded and mailed, not two."""

    def test_two_workers_send_one_reminder(self):
        def setup(env):
            plan = env["emboux.mail.plan"].create({"name": "One", "domains_allowed": 1})
            partner = env["res.partner"].create(
                {
                    "name": "Two Workers",
                    "is_company": True,
                    "email": "w@workers.example",
                }
            )
            for name in ("a.workers.example", "b.workers.example"):
                env["emboux.mail.domain"].create(
                    {"name": name, "partner_id": partner.id}
                )
            partner.emboux_plan_id = plan
            grace = env["emboux.mail.grace"].create(
                {
                    "partner_id": partner.id,
                    "date_start": fields.Date.today() - timedelta(days=7),
                    "days": 30,
                }
            )
            return partner.id, grace.id, plan.id

        partner_id, grace_id, plan_id = self._committed(setup)

        def cleanup(env):
            partner = env["res.partner"].browse(partner_id)
            env["mail.mail"].search(
                [("model", "=", "emboux.mail.grace"), ("res_id", "=", grace_id)]
            ).unlink()
            env["emboux.mail.grace"].browse(grace_id).unlink()
            partner.emboux_domain_ids.unlink()
            partner.unlink()
            env["emboux.mail.plan"].browse(plan_id).unlink()

        self.addCleanup(self._committed, cleanup)
        barrier = threading.Barrier(2)
        errors = []

        def worker():
            try:
                with self.registry.cursor() as cr:
                    env = self._concurrent_env(cr)
                    partner = env["res.partner"].browse(partner_id)
                    barrier.wait(timeout=10)
                    env["emboux.mail.grace"]._emboux_run(partner)
            except Exception as error:  # noqa: BLE001 reported below
                errors.append(error)

        threads = [threading.Thread(target=worker) for _worker in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        self.assertFalse([thread for thread in threads if thread.is_alive()])
        self.assertEqual(errors, [])

        def outcome(env):
            grace = env["emboux.mail.grace"].browse(grace_id)
            mails = env["mail.mail"].search_count(
                [("model", "=", "emboux.mail.grace"), ("res_id", "=", grace_id)]
            )
            return grace.step_ids.mapped("step"), mails

        self.assertEqual(self._committed(outcome), (["reminder_7"], 1))
