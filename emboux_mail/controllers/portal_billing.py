"""The customer's plan in the portal, at ``/my/email/plan``: the plan in
force, usage against each of its quotas, the plan invoices, a running grace
period, and the other plans on sale. Choosing one issues its invoice and
opens it, to be paid with the payment providers of the Invoicing portal."""

from odoo import http
from odoo.http import request

from .portal import EmbouxMailPortal, form_route

PLAN_PAGE = "/my/email/plan"


class EmbouxMailBillingPortal(EmbouxMailPortal):
    def _emboux_subscription(self):
        return self._emboux_tenant().sudo().emboux_subscription_id

    @staticmethod
    def _emboux_usage(tenant, limits):
        """(label, used, allowed) per quota; allowed 0 means unlimited. For
        per-domain and per-address quotas, the fullest one counts."""
        domains = tenant.emboux_domain_ids
        aliases = (
            request.env["emboux.mail.alias"]
            .sudo()
            ._read_group(
                [("domain_id", "in", domains.ids)], ["destination"], ["__count"]
            )
        )
        env = request.env
        return [
            (env._("Domains"), tenant.emboux_domain_count, limits["domains_allowed"]),
            (
                env._("Mailboxes in your fullest domain"),
                max(domains.mapped("mailbox_count"), default=0),
                limits["mailboxes_per_domain"],
            ),
            (
                env._("Aliases to your busiest address"),
                max((count for _destination, count in aliases), default=0),
                limits["aliases_per_mailbox"],
            ),
        ]

    @http.route(
        "/my/email/plan", type="http", auth="user", methods=["GET"], website=True
    )
    def portal_my_email_plan(self, flash=None, **kw):
        tenant = self._emboux_tenant().sudo()
        subscription = tenant.emboux_subscription_id
        plans = (
            request.env["emboux.mail.plan"]
            .sudo()
            .search(
                [
                    ("product_id", "!=", False),
                    ("company_id", "in", [False, request.env.company.id]),
                ]
            )
        )
        values = self._prepare_portal_layout_values()
        values.update(
            page_name="emboux_plan",
            emboux_tenant=tenant,
            emboux_plan=tenant.emboux_plan_id,
            emboux_subscription=subscription,
            emboux_usage=self._emboux_usage(tenant, tenant._emboux_limits()),
            emboux_plans=plans,
            emboux_grace=self._emboux_running_grace(),
            emboux_invoices=subscription.invoice_ids.filtered(
                lambda m: m.state == "posted"
            ).sorted("id", reverse=True),
        )
        return self._emboux_render(
            "emboux_mail.portal_my_email_plan", values, self._emboux_flash(flash)
        )

    @form_route("/my/email/plan/choose", page=PLAN_PAGE)
    def portal_my_email_plan_choose(self, plan_id=None, **post):
        """Issue the invoice of the chosen plan and open it to be paid."""
        tenant = self._emboux_tenant()
        env = request.env
        if not tenant.emboux_partner_ref:
            error = env._("Your account has no mail hosting: it has no plan.")
            return self._emboux_redirect(PLAN_PAGE, error=(error, 403))
        plan = (
            env["emboux.mail.plan"]
            .sudo()
            .search(
                [
                    ("id", "=", int(plan_id) if (plan_id or "").isdigit() else 0),
                    ("product_id", "!=", False),
                ],
                limit=1,
            )
        )
        if not plan:
            error = env._("This plan is not on sale.")
            return self._emboux_redirect(PLAN_PAGE, error=(error, 404))
        subscription = self._emboux_subscription()
        Subscription = env["emboux.mail.subscription"].sudo()

        def choose():
            nonlocal subscription
            if not subscription:
                subscription = Subscription.create(
                    {
                        "partner_id": tenant.id,
                        "plan_id": plan.id,
                        "user_id": tenant.user_id.id,
                    }
                )
            return subscription._emboux_choose_plan(plan)

        invoice, error = self._emboux_attempt(choose, PLAN_PAGE)
        if error:
            return self._emboux_redirect(PLAN_PAGE, error=error)
        if not invoice:  # back to the plan paid for: nothing to pay
            done = env._(
                "You keep the plan you have paid for: the change you had "
                "chosen is cancelled."
            )
            return self._emboux_redirect(PLAN_PAGE, done=done)
        return request.redirect(invoice.get_portal_url())
