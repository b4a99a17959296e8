from datetime import timedelta

from odoo import fields, models

PAID_STATES = ("paid", "in_payment")


class AccountMove(models.Model):
    """A plan invoice pays one period of a customer's mail hosting."""

    _inherit = "account.move"

    emboux_subscription_id = fields.Many2one(
        "emboux.mail.subscription",
        string="Mail Hosting Subscription",
        readonly=True,
        copy=False,
        index="btree_not_null",
        ondelete="restrict",
    )
    emboux_plan_id = fields.Many2one(
        "emboux.mail.plan", string="Mail Hosting Plan", readonly=True, copy=False
    )
    emboux_kind = fields.Selection(
        [("renewal", "Renewal"), ("upgrade", "Upgrade")],
        string="Plan Invoice Kind",
        readonly=True,
        copy=False,
        help="A renewal pays the period that follows the paid one; an "
        "upgrade starts a period of its plan on the day it is first paid.",
    )
    emboux_period_start = fields.Date(string="Period Start", readonly=True, copy=False)
    emboux_period_end = fields.Date(
        string="Period End",
        readonly=True,
        copy=False,
        help="The day after the last day the invoice pays.",
    )
    emboux_paid_on = fields.Date(
        string="First Paid On",
        readonly=True,
        copy=False,
        help="The day the plan invoice was first paid: its period is settled "
        "then, once (Odoo may report it paid again, after a bank "
        "reconciliation).",
    )

    def _emboux_is_paid(self):
        self.ensure_one()
        return (
            self.state == "posted"
            and self.move_type == "out_invoice"
            and self.payment_state in PAID_STATES
        )

    def _emboux_starts_when_paid(self, today):
        """An upgrade's period starts on the day it is first paid; so does a
        renewal's when paid after the tolerance, as the customer had the
        fallback plan meanwhile."""
        if self.emboux_kind == "upgrade":
            return True
        subscription = self.emboux_subscription_id
        tolerance = subscription._emboux_setting("payment_tolerance_days")
        return today >= self.emboux_period_start + timedelta(days=tolerance)

    def _invoice_paid_hook(self):
        """A paid plan invoice applies at once: an upgrade starts its
        period today, and the customer's plan and domains follow."""
        result = super()._invoice_paid_hook()
        plan_invoices = self.filtered("emboux_subscription_id")
        if plan_invoices:
            plan_invoices.sudo()._emboux_paid()
        return result

    def _emboux_paid(self):
        today = fields.Date.context_today(self)
        first = self.filtered(lambda m: not m.emboux_paid_on)
        for move in first:
            vals = {"emboux_paid_on": today}
            if move._emboux_starts_when_paid(today):
                vals["emboux_period_start"] = today
                vals["emboux_period_end"] = move.emboux_plan_id._emboux_period_end(
                    today
                )
            move.write(vals)
        for subscription in first.emboux_subscription_id:
            moves = first.filtered(
                lambda m, s=subscription: m.emboux_subscription_id == s
            )
            upgrades = moves.filtered(lambda m: m.emboux_kind == "upgrade")
            if upgrades:
                subscription.plan_id = upgrades[-1].emboux_plan_id
            subscription.message_post(
                body=self.env._(
                    "Invoice %(invoices)s paid.",
                    invoices=", ".join(moves.mapped("name")),
                )
            )
        self.emboux_subscription_id._emboux_apply()
