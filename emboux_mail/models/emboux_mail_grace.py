from datetime import timedelta

import psycopg2

from odoo import Command, api, fields, models

from ..exceptions import EmbouxUserError

REMINDER_DAYS = (7, 15, 22)
ACTIVE_STATES = ("open", "suspended", "waived")


class EmbouxMailGrace(models.Model):
    """The time a customer over its plan's domain quota has to pay, upgrade
    or delete domains before its surplus domains are suspended.

    Every step is recorded once (``emboux.mail.grace.step``, unique per
    grace), before its mail is sent: a second run the same day, or a second
    worker, finds the step taken and sends nothing."""

    _name = "emboux.mail.grace"
    _description = "Mail Hosting Grace Period"
    _order = "date_start desc, id desc"
    _rec_name = "partner_id"

    partner_id = fields.Many2one(
        "res.partner",
        string="Customer",
        required=True,
        readonly=True,
        ondelete="cascade",
        index=True,
    )
    company_id = fields.Many2one(related="partner_id.company_id", store=True)
    date_start = fields.Date(string="Started On", required=True, readonly=True)
    days = fields.Integer(
        string="Length (days)",
        required=True,
        readonly=True,
        help="The surplus domains are suspended this many days after the start.",
    )
    date_suspend = fields.Date(
        string="Suspension On", compute="_compute_dates", store=True
    )
    state = fields.Selection(
        [
            ("open", "Running"),
            ("suspended", "Domains Suspended"),
            ("waived", "Cancelled by an Operator"),
            ("closed", "Closed"),
        ],
        required=True,
        default="open",
        readonly=True,
        index=True,
    )
    day = fields.Integer(compute="_compute_progress")
    next_step = fields.Char(compute="_compute_progress")
    domains_held = fields.Integer(related="partner_id.emboux_domain_count")
    domains_allowed = fields.Integer(compute="_compute_progress")
    suspended_domain_ids = fields.Many2many(
        "emboux.mail.domain",
        "emboux_mail_grace_domain_rel",
        "grace_id",
        "domain_id",
        string="Suspended by Billing",
        readonly=True,
        help="Exactly the domains this grace period suspended: only these "
        "are re-activated when it closes.",
    )
    step_ids = fields.One2many(
        "emboux.mail.grace.step", "grace_id", string="Steps", readonly=True
    )
    date_closed = fields.Date(string="Closed On", readonly=True)

    def init(self):
        # one grace period at a time per customer, also between workers
        self.env.cr.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS emboux_mail_grace_active_uniq "
            "ON emboux_mail_grace (partner_id) "
            "WHERE state IN ('open', 'suspended', 'waived')"
        )

    @api.depends("date_start", "days")
    def _compute_dates(self):
        for grace in self:
            grace.date_suspend = grace.date_start + timedelta(days=grace.days)

    @api.depends("date_start", "days", "state", "step_ids")
    def _compute_progress(self):
        today = fields.Date.context_today(self)
        for grace in self:
            grace.day = (today - grace.date_start).days
            grace.domains_allowed = grace.partner_id._emboux_limits()["domains_allowed"]
            grace.next_step = grace._emboux_next_step(grace.day)

    def _emboux_next_step(self, day):
        if self.state == "suspended":
            return self.env._("Re-activation once within the quota")
        if self.state != "open":
            return ""
        taken = set(self.step_ids.mapped("step"))
        for reminder in REMINDER_DAYS:
            if reminder < self.days and f"reminder_{reminder}" not in taken:
                if reminder >= day:
                    return self.env._("Reminder on day %(day)s", day=reminder)
        return self.env._(
            "Suspension of the surplus domains on %(date)s", date=self.date_suspend
        )

    # -- the daily run ---------------------------------------------------------
    @api.model
    def _emboux_run(self, partners=None):
        """Open, advance and close grace periods: of ``partners``, or of
        every customer holding domains."""
        Grace = self.sudo()
        scope = [("partner_id", "in", partners.ids)] if partners is not None else []
        active = Grace.search([("state", "in", ACTIVE_STATES), *scope])
        if partners is None:
            partners = (
                self.env["res.partner"].sudo().search([("emboux_domain_count", ">", 0)])
            )
        today = fields.Date.context_today(self)
        by_partner = {grace.partner_id: grace for grace in active}
        for partner in partners.sudo() | active.partner_id:
            grace = by_partner.get(partner, Grace)
            over = partner._emboux_domain_surplus() > 0
            if over and not grace:
                Grace._emboux_open(partner, today)
            elif grace and not over:
                grace._emboux_close(today)
            elif grace.state == "open":
                grace._emboux_advance(today)

    @api.model
    def _emboux_run_running(self, partners):
        """Run only the grace periods ``partners`` have running."""
        running = self.sudo().search(
            [("partner_id", "in", partners.ids), ("state", "in", ACTIVE_STATES)]
        )
        if running:
            self._emboux_run(running.partner_id)

    @api.model
    def _emboux_open(self, partner, today):
        try:
            with self.env.cr.savepoint():
                grace = self.create(
                    {
                        "partner_id": partner.id,
                        "date_start": today,
                        "days": self.env["emboux.mail.subscription"]._emboux_setting(
                            "grace_days"
                        ),
                    }
                )
        except psycopg2.IntegrityError:
            return  # another worker opened it
        partner.message_post(
            body=self.env._(
                "Mail hosting: %(held)s domains held, %(allowed)s allowed by the "
                "plan. Grace period opened: the surplus domains will be "
                "suspended on %(date)s unless the customer pays, upgrades or "
                "deletes domains.",
                held=partner.emboux_domain_count,
                allowed=grace.domains_allowed,
                date=grace.date_suspend,
            )
        )
        self.env["emboux.mail.webhook.event"]._emboux_emit("grace.opened", grace)
        grace._emboux_advance(today)

    def _emboux_advance(self, today):
        self.ensure_one()
        if not self._emboux_lock():
            return
        day = (today - self.date_start).days
        if day >= self.days:
            self._emboux_suspend_surplus()
            return
        due = [reminder for reminder in REMINDER_DAYS if reminder <= day]
        if due and self._emboux_take_step(f"reminder_{due[-1]}"):
            self._emboux_notify(
                "emboux_mail.mail_template_grace_reminder",
                self.env._(
                    "Mail hosting: grace period reminder (day %(day)s) sent; "
                    "suspension on %(date)s.",
                    day=due[-1],
                    date=self.date_suspend,
                ),
            )
            self.env["emboux.mail.webhook.event"]._emboux_emit(
                "grace.reminder_sent", self, day=due[-1]
            )

    def _emboux_suspend_surplus(self):
        """Suspend the newest domains over the quota, with reason billing,
        and remember exactly which."""
        partner = self.partner_id
        surplus = partner._emboux_domain_surplus()
        domains = (
            self.env["emboux.mail.domain"]
            .sudo()
            .search(
                [("partner_id", "=", partner.id), ("suspended", "=", False)],
                order="create_date desc, id desc",
                limit=max(surplus, 0),
            )
        )
        if not self._emboux_take_step("suspension", domains):
            return
        domains._emboux_suspend("billing")
        self.write(
            {"state": "suspended", "suspended_domain_ids": [Command.set(domains.ids)]}
        )
        self._emboux_notify(
            "emboux_mail.mail_template_grace_suspended",
            self.env._(
                "Mail hosting: grace period over, suspended for billing: %(domains)s.",
                domains=", ".join(domains.mapped("name")) or self.env._("none"),
            ),
        )
        responsible = (
            partner.emboux_subscription_id.user_id
            or partner.user_id
            or self.env.ref("base.user_admin", raise_if_not_found=False)
        )
        if responsible:
            partner.activity_schedule(
                "mail.mail_activity_data_todo",
                user_id=responsible.id,
                summary=self.env._("Mail domains suspended for billing"),
                note=self.env._(
                    "%(count)s domains of %(customer)s were suspended at the end "
                    "of the grace period: %(domains)s.",
                    count=len(domains),
                    customer=partner.display_name,
                    domains=", ".join(domains.mapped("name")),
                ),
            )

    def _emboux_close(self, today):
        """Back within the quota: re-activate exactly what billing suspended
        (never a domain suspended by an operator or the customer)."""
        self.ensure_one()
        if not self._emboux_lock():
            return
        domains = self._emboux_lift()
        self._emboux_take_step("reactivation", domains)
        self.write({"state": "closed", "date_closed": today})
        self.env["emboux.mail.webhook.event"]._emboux_emit(
            "grace.closed", self, reactivated=domains.mapped("name")
        )
        self.partner_id.message_post(
            body=self.env._(
                "Mail hosting: back within the plan's domain quota, grace period "
                "closed. Re-activated: %(domains)s.",
                domains=", ".join(domains.mapped("name")) or self.env._("none"),
            )
        )
        if domains:
            self._emboux_send("emboux_mail.mail_template_grace_reactivated")

    def _emboux_lift(self):
        """Re-activate the domains this grace period suspended that are
        still suspended for billing (an operator may have taken one over
        since); returns them."""
        domains = self.suspended_domain_ids.filtered(
            lambda d: d.suspended and d.suspension_reason == "billing"
        )
        domains._emboux_activate("billing")
        return domains

    def _emboux_lock(self):
        """Hold this grace period for the transaction; False when another
        worker is running it right now."""
        self.env.cr.execute(
            "SELECT id FROM emboux_mail_grace WHERE id = %s FOR UPDATE SKIP LOCKED",
            [self.id],
        )
        if not self.env.cr.fetchone():
            return False
        self.invalidate_recordset()
        return self.state in ACTIVE_STATES

    def _emboux_take_step(self, step, domains=None):
        """Record ``step`` of this grace period; False when it was taken
        (by an earlier run; the row lock and the unique index keep a
        concurrent one out)."""
        if step in self.step_ids.mapped("step"):
            return False
        try:
            with self.env.cr.savepoint():
                self.env["emboux.mail.grace.step"].sudo().create(
                    {
                        "grace_id": self.id,
                        "step": step,
                        "domain_ids": [Command.set(domains.ids if domains else [])],
                    }
                )
        except psycopg2.IntegrityError:
            return False
        return True

    def _emboux_notify(self, template_xmlid, note):
        self.partner_id.message_post(body=note)
        self._emboux_send(template_xmlid)

    def _emboux_send(self, template_xmlid):
        template = self.env.ref(template_xmlid, raise_if_not_found=False)
        if template and self.partner_id.email:
            template.sudo().send_mail(self.id)

    # -- operator actions ------------------------------------------------------
    def _emboux_extend(self, days):
        self.ensure_one()
        if self.state != "open":
            raise EmbouxUserError(
                self.env._("Only a running grace period can be extended.")
            )
        if days <= 0:
            raise EmbouxUserError(self.env._("Extra Days: extend by one day or more."))
        self.days += days
        self.partner_id.message_post(
            body=self.env._(
                "Mail hosting: grace period extended by %(days)s days by "
                "%(user)s; suspension on %(date)s.",
                days=days,
                user=self.env.user.name,
                date=self.date_suspend,
            )
        )

    def _emboux_api_dict(self):
        """The grace period as webhooks show it."""
        self.ensure_one()
        return {
            "id": self.id,
            "state": self.state,
            "date_start": fields.Date.to_string(self.date_start),
            "date_suspend": fields.Date.to_string(self.date_suspend),
            "domains_held": self.domains_held,
            "domains_allowed": self.domains_allowed,
            "suspended_domains": self.suspended_domain_ids.mapped("name"),
        }

    def action_cancel(self):
        """The operator waives billing for this customer while it stays over
        its quota: what billing suspended is re-activated, and no new grace
        period opens until the customer is back within the quota."""
        for grace in self.filtered(lambda g: g.state in ("open", "suspended")):
            domains = grace._emboux_lift()
            grace.state = "waived"
            self.env["emboux.mail.webhook.event"]._emboux_emit(
                "grace.closed", grace, reactivated=domains.mapped("name")
            )
            grace.partner_id.message_post(
                body=self.env._(
                    "Mail hosting: grace period cancelled by %(user)s. "
                    "Re-activated: %(domains)s.",
                    user=self.env.user.name,
                    domains=", ".join(domains.mapped("name")) or self.env._("none"),
                )
            )
