import logging
from datetime import timedelta

from odoo import Command, api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..exceptions import EmbouxUserError
from .account_move import PAID_STATES

_logger = logging.getLogger(__name__)

SETTINGS = {
    "invoice_lead_days": 7,
    "payment_tolerance_days": 3,
    "grace_days": 30,
}


class EmbouxMailSubscription(models.Model):
    """What a customer pays for: its plan and the day it is paid until.

    Paid-until is derived from the paid plan invoices, never typed in, so
    that a credit note or an un-reconciled payment takes it back by itself;
    the daily check then applies the plan that follows from it."""

    _name = "emboux.mail.subscription"
    _description = "Mail Hosting Subscription"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _rec_name = "partner_id"
    _order = "paid_until, id"

    partner_id = fields.Many2one(
        "res.partner",
        string="Customer",
        required=True,
        ondelete="cascade",
        index=True,
        domain=[("is_company", "=", True)],
        tracking=True,
    )
    plan_id = fields.Many2one(
        "emboux.mail.plan",
        string="Plan",
        required=True,
        tracking=True,
        domain=[("product_id", "!=", False)],
        help="The plan the next renewal invoices. A downgrade changes it at "
        "once and takes effect when the paid period ends; an upgrade "
        "changes it when its invoice is paid.",
    )
    effective_plan_id = fields.Many2one(
        "emboux.mail.plan",
        string="Plan in Force",
        compute="_compute_effective_plan_id",
        help="The plan that sets the customer's quotas today: the paid one, "
        "else the fallback plan of Settings.",
    )
    user_id = fields.Many2one(
        "res.users",
        string="Responsible",
        default=lambda self: self.env.user,
        tracking=True,
        help="Gets an activity when the customer's surplus domains are suspended.",
    )
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    paid_until = fields.Date(
        compute="_compute_paid_until",
        store=True,
        help="The day after the last paid day, from the paid plan invoices.",
    )
    invoice_ids = fields.One2many(
        "account.move", "emboux_subscription_id", string="Invoices"
    )
    invoice_count = fields.Integer(compute="_compute_invoice_count")
    state = fields.Selection(
        [
            ("unpaid", "Not Paid Yet"),
            ("paid", "Paid"),
            ("tolerance", "Payment Due"),
            ("lapsed", "Lapsed"),
        ],
        compute="_compute_effective_plan_id",
    )

    _sql_constraints = [
        (
            "partner_uniq",
            "unique(partner_id)",
            "A customer has one mail hosting subscription.",
        )
    ]

    @api.depends(
        "invoice_ids.payment_state",
        "invoice_ids.state",
        "invoice_ids.emboux_period_end",
    )
    def _compute_paid_until(self):
        for subscription in self:
            ends = subscription._emboux_paid_invoices().mapped("emboux_period_end")
            subscription.paid_until = max(ends) if ends else False

    @api.depends("paid_until", "invoice_ids.payment_state")
    def _compute_effective_plan_id(self):
        today = fields.Date.context_today(self)
        for subscription in self:
            plan, state = subscription._emboux_plan_on(today)
            subscription.effective_plan_id = plan
            subscription.state = state

    def _compute_invoice_count(self):
        for subscription in self:
            subscription.invoice_count = len(subscription.invoice_ids)

    @api.model
    def _emboux_setting(self, name):
        params = self.env["ir.config_parameter"].sudo()
        return int(params.get_param(f"emboux_mail.{name}", SETTINGS[name]))

    @api.model
    def _emboux_fallback_plan(self):
        params = self.env["ir.config_parameter"].sudo()
        plan_id = int(params.get_param("emboux_mail.fallback_plan_id", 0) or 0)
        return self.env["emboux.mail.plan"].sudo().browse(plan_id).exists()

    def _emboux_paid_invoices(self):
        return self.invoice_ids.filtered(
            lambda m: m._emboux_is_paid() and m.emboux_period_end
        )

    def _emboux_open_invoices(self):
        """Plan invoices issued and not paid yet (nor cancelled or reversed)."""
        return self.invoice_ids.filtered(
            lambda m: m.state == "posted"
            and m.move_type == "out_invoice"
            and m.payment_state not in (*PAID_STATES, "reversed")
        )

    def _emboux_plan_on(self, day):
        """(plan, state) on ``day``: the most recently bought paid period
        that covers it; in the tolerance after the last one, that one's plan;
        else the fallback plan."""
        self.ensure_one()
        paid = self._emboux_paid_invoices()
        covering = paid.filtered(
            lambda m: m.emboux_period_start <= day < m.emboux_period_end
        )
        if covering:
            return covering.sorted("id")[-1].emboux_plan_id, "paid"
        if not paid:
            return self._emboux_fallback_plan(), "unpaid"
        tolerance = timedelta(days=self._emboux_setting("payment_tolerance_days"))
        if day < self.paid_until + tolerance:
            last = paid.sorted(lambda m: (m.emboux_period_end, m.id))[-1]
            return last.emboux_plan_id, "tolerance"
        return self._emboux_fallback_plan(), "lapsed"

    def _emboux_apply(self):
        """Give each customer the plan in force today, then let billing see
        at once whether it now holds more domains than that plan allows."""
        self._emboux_set_plans()
        self.env["emboux.mail.grace"]._emboux_run(self.partner_id)

    def _emboux_set_plans(self):
        today = fields.Date.context_today(self)
        for subscription in self:
            partner = subscription.partner_id
            plan = subscription._emboux_plan_on(today)[0]
            if partner.emboux_plan_id == plan:
                continue
            previous = partner.emboux_plan_id
            partner.write({"emboux_plan_id": plan.id})
            partner.message_post(
                body=self.env._(
                    "Mail hosting plan in force: %(plan)s (was %(previous)s).",
                    plan=plan.name or self.env._("none"),
                    previous=previous.name or self.env._("none"),
                )
            )

    # -- invoicing ---------------------------------------------------------------
    def _emboux_issue_invoice(self, plan, kind, start=False):
        """Post and send the invoice of one period of ``plan``: from
        ``start`` (a renewal), or from the day it is paid (an upgrade)."""
        self.ensure_one()
        if not plan.product_id:
            raise EmbouxUserError(
                self.env._(
                    "The plan %(plan)s has no product: it cannot be invoiced.",
                    plan=plan.name,
                )
            )
        end = plan._emboux_period_end(start) if start else False
        period = dict(plan._fields["billing_period"]._description_selection(self.env))
        if start:
            label = self.env._(
                "Mail hosting, plan %(plan)s: %(start)s to %(end)s",
                plan=plan.name,
                start=start,
                end=end - timedelta(days=1),
            )
        else:
            label = self.env._(
                "Mail hosting, plan %(plan)s: %(period)s from the day of payment",
                plan=plan.name,
                period=period[plan.billing_period].lower(),
            )
        move = (
            self.env["account.move"]
            .sudo()
            .with_company(self.company_id)
            .create(
                {
                    "move_type": "out_invoice",
                    "partner_id": self.partner_id.id,
                    "invoice_user_id": self.user_id.id,
                    "emboux_subscription_id": self.id,
                    "emboux_plan_id": plan.id,
                    "emboux_kind": kind,
                    "emboux_period_start": start,
                    "emboux_period_end": end,
                    "invoice_line_ids": [
                        Command.create(
                            {"product_id": plan.product_id.id, "name": label}
                        )
                    ],
                }
            )
        )
        move.action_post()
        if self.partner_id.email:
            self.env["account.move.send"].sudo()._generate_and_send_invoices(
                move, sending_methods={"email"}, allow_fallback_pdf=True
            )
        return move

    def _emboux_cancel_open_invoices(self):
        """Invoices a plan change replaces: an unpaid invoice of another
        plan must not be paid by mistake."""
        for move in self._emboux_open_invoices().filtered(
            lambda m: m.amount_residual == m.amount_total
        ):
            move.button_draft()
            move.button_cancel()

    def _emboux_renewal_due(self, today):
        self.ensure_one()
        if self._emboux_open_invoices():
            return False
        lead = timedelta(days=self._emboux_setting("invoice_lead_days"))
        return not self.paid_until or self.paid_until - lead <= today

    @api.model
    def _cron_issue_invoices(self):
        """Invoice the next period of each subscription ahead of its end."""
        today = fields.Date.context_today(self)
        due = self.search([]).filtered(lambda s: s._emboux_renewal_due(today))
        for done, subscription in enumerate(due, 1):
            start = max(subscription.paid_until or today, today)
            try:
                # one customer's error never costs another its invoice
                with self.env.cr.savepoint():
                    subscription._emboux_issue_invoice(
                        subscription.plan_id, "renewal", start
                    )
            except (UserError, ValidationError) as error:
                _logger.warning(
                    "No renewal invoice for %s: %s", subscription.partner_id.name, error
                )
            self.env["ir.cron"]._notify_progress(done=done, remaining=len(due) - done)

    def action_issue_invoice(self):
        """Invoice the period after the paid one now, not at the lead days."""
        today = fields.Date.context_today(self)
        for subscription in self:
            if subscription._emboux_open_invoices():
                raise EmbouxUserError(
                    self.env._(
                        "%(customer)s has an unpaid plan invoice already.",
                        customer=subscription.partner_id.display_name,
                    )
                )
            subscription._emboux_issue_invoice(
                subscription.plan_id,
                "renewal",
                max(subscription.paid_until or today, today),
            )

    def _emboux_choose_plan(self, plan):
        """A customer or an operator picks ``plan``: an upgrade is invoiced
        now and applies when paid; a downgrade is invoiced for the period
        after the paid one, where it applies; the paid plan again drops a
        pending downgrade. Returns the new invoice, if any."""
        self.ensure_one()
        current, state = self._emboux_plan_on(fields.Date.context_today(self))
        paid = state == "paid"
        if paid and plan == current == self.plan_id:
            raise EmbouxUserError(
                self.env._("%(plan)s is already the plan.", plan=plan.name)
            )
        self._emboux_cancel_open_invoices()
        invoice = self.env["account.move"]
        if paid and plan == current:
            self.plan_id = plan
        elif paid and plan._emboux_monthly_price() < current._emboux_monthly_price():
            self.plan_id = plan
            invoice = self._emboux_issue_invoice(plan, "renewal", self.paid_until)
        else:
            invoice = self._emboux_issue_invoice(plan, "upgrade")
        self.message_post(
            body=self.env._(
                "%(plan)s chosen: %(invoice)s.",
                plan=plan.name,
                invoice=invoice.name or self.env._("no invoice"),
            )
        )
        return invoice

    def action_view_invoices(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "account.action_move_out_invoice_type"
        )
        action["domain"] = [("emboux_subscription_id", "=", self.id)]
        action["context"] = {"create": False}
        return action

    @api.model
    def _cron_billing_check(self):
        """Daily: apply each subscription's plan in force (payments, credit
        notes and un-reconciled payments have changed paid-until), then run
        the grace periods of every customer over its domain quota."""
        self.search([])._emboux_set_plans()
        self.env["emboux.mail.grace"]._emboux_run()
