"""The customer portal's webhook endpoints, at ``/my/email/webhooks``.

Portal users have no access to the webhook models: the tenant's endpoints,
their deliveries and attempts are read and changed with ``sudo()``, always
found within the tenant's scope (any other id answers 404), by whoever may
read the tenant's domains. A signing secret is shown once, in the response
to the form that made it (creation or rotation), as an API key's token is.
"""

from werkzeug.exceptions import NotFound

from odoo import Command, http
from odoo.http import request

from .portal import EmbouxMailPortal

# the attempts an endpoint's page lists (newest first), and how much of each
# receiver's answer it shows
ATTEMPTS_SHOWN = 50
ANSWER_SHOWN = 120


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

    @staticmethod
    def _emboux_webhook_done(done, webhook=None):
        """The message of a change that was just made (``?done=``)."""
        env = request.env
        messages = {
            "webhook_deleted": env._("The endpoint was deleted."),
            "webhook_enabled": env._(
                "The endpoint was enabled: it hears events again."
            ),
            "webhook_disabled": env._(
                "The endpoint was disabled: it hears no event until it is enabled."
            ),
            "delivery_resent": env._("The event will be sent again shortly.")
            if webhook and webhook.active
            else env._("The event will be sent again once the endpoint is enabled."),
        }
        return messages.get(done)

    # -- endpoints ------------------------------------------------------------
    @http.route(
        "/my/email/webhooks", type="http", auth="user", methods=["GET"], website=True
    )
    def portal_my_email_webhooks(self, done=None, **kw):
        return self._emboux_render_webhooks(done=self._emboux_webhook_done(done))

    def _emboux_render_webhooks(self, error=None, secret=None, done=None, form=None):
        values = self._prepare_portal_layout_values()
        values.update(
            page_name="emboux_webhooks",
            emboux_webhooks=self._emboux_webhooks().search(self._emboux_scope()),
            emboux_topics=request.env["emboux.mail.webhook.topic"].sudo().search([]),
            emboux_tenant=self._emboux_tenant(),
            emboux_done=done,
            emboux_form=form or {},
        )
        return self._emboux_render(
            "emboux_mail.portal_my_email_webhooks", values, error, secret
        )

    @http.route(
        "/my/email/webhooks/new",
        type="http",
        auth="user",
        methods=["POST"],
        website=True,
    )
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
            return self._emboux_render_webhooks(error=(error, 403), form=form)
        if not url:
            error = env._("Type the URL your receiver listens on.")
            return self._emboux_render_webhooks(error=(error, 422), form=form)
        if not topics:
            error = env._("Tick the events the endpoint hears: one at least.")
            return self._emboux_render_webhooks(error=(error, 422), form=form)
        webhook, error = self._emboux_attempt(
            lambda: Webhook.create(
                {
                    "url": url,
                    "partner_id": tenant.id,
                    "topic_ids": [Command.set(topics.ids)],
                    "secret_shown": True,
                }
            )
        )
        if error:
            return self._emboux_render_webhooks(error=error, form=form)
        return self._emboux_render_webhooks(
            secret=self._emboux_webhook_secret(webhook, webhook.secret),
            done=env._("Endpoint %(url)s created.", url=webhook.url),
        )

    @http.route(
        "/my/email/webhooks/<int:webhook_id>",
        type="http",
        auth="user",
        methods=["GET"],
        website=True,
    )
    def portal_my_email_webhook(self, webhook_id, done=None, **kw):
        webhook = self._emboux_webhook(webhook_id)
        return self._emboux_render_webhook(
            webhook, done=self._emboux_webhook_done(done, webhook)
        )

    def _emboux_render_webhook(self, webhook, error=None, secret=None, done=None):
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
            emboux_done=done,
        )
        return self._emboux_render(
            "emboux_mail.portal_my_email_webhook", values, error, secret
        )

    @http.route(
        "/my/email/webhooks/<int:webhook_id>/rotate",
        type="http",
        auth="user",
        methods=["POST"],
        website=True,
    )
    def portal_my_email_webhook_rotate(self, webhook_id, **post):
        """A new signing secret, shown once; the previous one keeps signing
        for a day, so that the receiver can be changed without a miss."""
        webhook = self._emboux_webhook(webhook_id)

        def rotate():
            webhook.secret_shown = True
            return webhook._emboux_rotate_secret()

        secret, error = self._emboux_attempt(rotate)
        if error:
            return self._emboux_render_webhook(webhook, error=error)
        return self._emboux_render_webhook(
            webhook,
            secret=self._emboux_webhook_secret(webhook, secret),
            done=request.env._(
                "A new signing secret was made: deliveries are signed with both "
                "secrets for 24 hours, then with the new one only."
            ),
        )

    @http.route(
        "/my/email/webhooks/<int:webhook_id>/enable",
        type="http",
        auth="user",
        methods=["POST"],
        website=True,
    )
    def portal_my_email_webhook_enable(self, webhook_id, **post):
        webhook = self._emboux_webhook(webhook_id)
        _dummy, error = self._emboux_attempt(webhook.action_enable)
        if error:
            return self._emboux_render_webhook(webhook, error=error)
        return request.redirect(f"/my/email/webhooks/{webhook.id}?done=webhook_enabled")

    @http.route(
        "/my/email/webhooks/<int:webhook_id>/disable",
        type="http",
        auth="user",
        methods=["POST"],
        website=True,
    )
    def portal_my_email_webhook_disable(self, webhook_id, **post):
        webhook = self._emboux_webhook(webhook_id)
        _dummy, error = self._emboux_attempt(lambda: webhook.write({"active": False}))
        if error:
            return self._emboux_render_webhook(webhook, error=error)
        return request.redirect(
            f"/my/email/webhooks/{webhook.id}?done=webhook_disabled"
        )

    @http.route(
        "/my/email/webhooks/<int:webhook_id>/delete",
        type="http",
        auth="user",
        methods=["POST"],
        website=True,
    )
    def portal_my_email_webhook_delete(self, webhook_id, **post):
        webhook = self._emboux_webhook(webhook_id)
        _dummy, error = self._emboux_attempt(webhook.unlink)
        if error:
            return self._emboux_render_webhook(webhook, error=error)
        return request.redirect("/my/email/webhooks?done=webhook_deleted")

    @http.route(
        "/my/email/webhooks/<int:webhook_id>/delivery/<int:delivery_id>/resend",
        type="http",
        auth="user",
        methods=["POST"],
        website=True,
    )
    def portal_my_email_webhook_resend(self, webhook_id, delivery_id, **post):
        """Send a failed delivery again, with the same event id."""
        webhook = self._emboux_webhook(webhook_id)
        delivery = (
            request.env["emboux.mail.webhook.delivery"]
            .sudo()
            .search([("id", "=", delivery_id), ("webhook_id", "=", webhook.id)])
        )
        if not delivery:
            raise NotFound()
        if delivery.state != "failed":
            error = request.env._("Only a failed delivery is sent again.")
            return self._emboux_render_webhook(webhook, error=(error, 409))
        _dummy, error = self._emboux_attempt(delivery.action_resend)
        if error:
            return self._emboux_render_webhook(webhook, error=error)
        return request.redirect(f"/my/email/webhooks/{webhook.id}?done=delivery_resent")
