"""The customer portal's webhook endpoints, at ``/my/email/webhooks``.

Portal users have no access to the webhook models: the tenant's endpoints,
their deliveries and attempts are read and changed with ``sudo()``, always
found within the tenant's scope (any other id answers 404), by whoever may
read the tenant's domains. A signing secret is shown once, on the page the
form that made it (creation or rotation) leads to, as an API key's token is.
"""

from werkzeug.exceptions import NotFound

from odoo import Command, http
from odoo.http import request

from .portal import EmbouxMailPortal, form_route

# the attempts an endpoint's page lists (newest first), and how much of each
# receiver's answer it shows
ATTEMPTS_SHOWN = 50
ANSWER_SHOWN = 120
WEBHOOKS_PAGE = "/my/email/webhooks"


class EmbouxMailWebhookPortal(EmbouxMailPortal):
    """A customer's own endpoints, which hear its own events only."""

    # -- lookups --------------------------------------------------------------
    def _emboux_webhooks(self):
        """The endpoints model in ``sudo`` (portal users have no access to
        it), disabled ones included: to search within the tenant's scope."""
        request.env["emboux.mail.domain"].check_access("read")
        return request.env["emboux.mail.webhook"].sudo().with_context(active_test=False)

    def _emboux_webhook(self, webhook_id):
        """The tenant's endpoint ``webhook_id``; 404 for any other id."""
        webhook = self._emboux_webhooks().search(
            [("id", "=", webhook_id), *self._emboux_scope()], limit=1
        )
        if not webhook:
            raise NotFound()
        return webhook

    def _emboux_webhook_topics(self):
        """The event types ticked in the form, among those that exist."""
        Topic = request.env["emboux.mail.webhook.topic"].sudo()
        ids = {
            self._emboux_whole_number(value)
            for value in request.httprequest.form.getlist("topic_ids")
        } - {None}
        return Topic.browse(ids).exists()

    @staticmethod
    def _emboux_webhook_secret(webhook, secret):
        title = request.env._("The signing secret of %(url)s", url=webhook.url)
        return {"title": title, "value": secret}

    # -- endpoints ------------------------------------------------------------
    @http.route(WEBHOOKS_PAGE, type="http", auth="user", methods=["GET"], website=True)
    def portal_my_email_webhooks(self, flash=None, **kw):
        values = self._prepare_portal_layout_values()
        values.update(
            page_name="emboux_webhooks",
            emboux_webhooks=self._emboux_webhooks().search(self._emboux_scope()),
            emboux_topics=request.env["emboux.mail.webhook.topic"].sudo().search([]),
            emboux_tenant=self._emboux_tenant(),
        )
        return self._emboux_render(
            "emboux_mail.portal_my_email_webhooks", values, self._emboux_flash(flash)
        )

    @form_route("/my/email/webhooks/new", page=WEBHOOKS_PAGE)
    def portal_my_email_webhook_create(self, **post):
        """A new endpoint of the tenant; the model refuses a URL that is not
        public (the SSRF guard), and its message is shown."""
        env = request.env
        tenant = self._emboux_tenant()
        Webhook = self._emboux_webhooks()
        url = (post.get("url") or "").strip()
        topics = self._emboux_webhook_topics()
        form = {"url": url, "topic_ids": topics.ids}
        if not tenant.emboux_partner_ref:
            error = env._("Your account has no mail hosting: it cannot have webhooks.")
            return self._emboux_redirect(WEBHOOKS_PAGE, error=(error, 403), form=form)
        if not url:
            error = env._("Type the URL your receiver listens on.")
            return self._emboux_redirect(WEBHOOKS_PAGE, error=(error, 422), form=form)
        if not topics:
            error = env._("Tick the events the endpoint hears: one at least.")
            return self._emboux_redirect(WEBHOOKS_PAGE, error=(error, 422), form=form)
        webhook, error = self._emboux_attempt(
            lambda: Webhook.create(
                {
                    "url": url,
                    "partner_id": tenant.id,
                    "topic_ids": [Command.set(topics.ids)],
                    "secret_shown": True,
                }
            ),
            WEBHOOKS_PAGE,
        )
        if error:
            return self._emboux_redirect(WEBHOOKS_PAGE, error=error, form=form)
        return self._emboux_redirect(
            WEBHOOKS_PAGE,
            done=env._("Endpoint %(url)s created.", url=webhook.url),
            secret=self._emboux_webhook_secret(webhook, webhook.secret),
        )

    @http.route(
        "/my/email/webhooks/<int:webhook_id>",
        type="http",
        auth="user",
        methods=["GET"],
        website=True,
    )
    def portal_my_email_webhook(self, webhook_id, flash=None, **kw):
        webhook = self._emboux_webhook(webhook_id)
        attempts = (
            request.env["emboux.mail.webhook.attempt"]
            .sudo()
            .search([("webhook_id", "=", webhook.id)], limit=ATTEMPTS_SHOWN)
        )
        # Resend is offered once per failed delivery: on its latest attempt
        latest = {}
        for attempt in attempts:
            if attempt.delivery_id.state == "failed":
                latest.setdefault(attempt.delivery_id, attempt)
        values = self._prepare_portal_layout_values()
        values.update(
            page_name="emboux_webhook",
            emboux_webhook=webhook,
            emboux_attempts=attempts,
            emboux_resendable=set(latest.values()),
            emboux_overlap=len(webhook._emboux_signing_secrets()) > 1,
            emboux_answer_shown=ANSWER_SHOWN,
            emboux_ask=self._emboux_ask,
        )
        return self._emboux_render(
            "emboux_mail.portal_my_email_webhook", values, self._emboux_flash(flash)
        )

    @staticmethod
    def _emboux_webhook_url(webhook):
        """The endpoint's page, where its forms lead back."""
        return f"{WEBHOOKS_PAGE}/{webhook.id}"

    @http.route(
        "/my/email/webhooks/<int:webhook_id>/rotate",
        type="http",
        auth="user",
        methods=["GET", "POST"],
        website=True,
    )
    def portal_my_email_webhook_rotate(self, webhook_id, **post):
        """A new signing secret, shown once; the previous one keeps signing
        for a day, so that the receiver can be changed without a miss."""
        webhook = self._emboux_webhook(webhook_id)
        page = self._emboux_webhook_url(webhook)
        if request.httprequest.method != "POST":
            return self._emboux_confirm("webhook_rotate", webhook, page)

        def rotate():
            webhook.secret_shown = True
            return webhook._emboux_rotate_secret()

        secret, error = self._emboux_attempt(rotate, page)
        if error:
            return self._emboux_redirect(page, error=error)
        return self._emboux_redirect(
            page,
            done=request.env._(
                "A new signing secret was made: deliveries are signed with both "
                "secrets for 24 hours, then with the new one only."
            ),
            secret=self._emboux_webhook_secret(webhook, secret),
        )

    @form_route(
        "/my/email/webhooks/<int:webhook_id>/enable",
        page=WEBHOOKS_PAGE + "/{webhook_id}",
    )
    def portal_my_email_webhook_enable(self, webhook_id, **post):
        webhook = self._emboux_webhook(webhook_id)
        page = self._emboux_webhook_url(webhook)
        _dummy, error = self._emboux_attempt(webhook.action_enable, page)
        if error:
            return self._emboux_redirect(page, error=error)
        done = request.env._("The endpoint was enabled: it hears events again.")
        return self._emboux_redirect(page, done=done)

    @form_route(
        "/my/email/webhooks/<int:webhook_id>/disable",
        page=WEBHOOKS_PAGE + "/{webhook_id}",
    )
    def portal_my_email_webhook_disable(self, webhook_id, **post):
        webhook = self._emboux_webhook(webhook_id)
        page = self._emboux_webhook_url(webhook)
        _dummy, error = self._emboux_attempt(
            lambda: webhook.write({"active": False}), page
        )
        if error:
            return self._emboux_redirect(page, error=error)
        done = request.env._(
            "The endpoint was disabled: it hears no event until it is enabled."
        )
        return self._emboux_redirect(page, done=done)

    @http.route(
        "/my/email/webhooks/<int:webhook_id>/delete",
        type="http",
        auth="user",
        methods=["GET", "POST"],
        website=True,
    )
    def portal_my_email_webhook_delete(self, webhook_id, **post):
        webhook = self._emboux_webhook(webhook_id)
        if request.httprequest.method != "POST":
            page = self._emboux_webhook_url(webhook)
            return self._emboux_confirm("webhook_delete", webhook, page)
        url = webhook.url
        _dummy, error = self._emboux_attempt(webhook.unlink, WEBHOOKS_PAGE)
        if error:
            return self._emboux_redirect(self._emboux_webhook_url(webhook), error=error)
        done = request.env._("Endpoint %(url)s deleted.", url=url)
        return self._emboux_redirect(WEBHOOKS_PAGE, done=done)

    @form_route(
        "/my/email/webhooks/<int:webhook_id>/delivery/<int:delivery_id>/resend",
        page=WEBHOOKS_PAGE + "/{webhook_id}",
    )
    def portal_my_email_webhook_resend(self, webhook_id, delivery_id, **post):
        """Send a failed delivery again, with the same event id."""
        webhook = self._emboux_webhook(webhook_id)
        page = self._emboux_webhook_url(webhook)
        delivery = (
            request.env["emboux.mail.webhook.delivery"]
            .sudo()
            .search([("id", "=", delivery_id), ("webhook_id", "=", webhook.id)])
        )
        if not delivery:
            raise NotFound()
        if delivery.state != "failed":
            error = request.env._("Only a failed delivery is sent again.")
            return self._emboux_redirect(page, error=(error, 409))
        _dummy, error = self._emboux_attempt(delivery.action_resend, page)
        if error:
            return self._emboux_redirect(page, error=error)
        if webhook.active:
            done = request.env._("The event will be sent again shortly.")
        else:
            done = request.env._(
                "The event will be sent again once the endpoint is enabled."
            )
        return self._emboux_redirect(page, done=done)
