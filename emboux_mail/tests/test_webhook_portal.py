"""Lifecycle webhooks in the customer portal: a tenant's own endpoints, which
hear its own events only, signed with secrets shown once; the SSRF guard on
their URLs; and another tenant's endpoints, which answer 404."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lxml import html
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from odoo import fields
from odoo.tests import JsonRpcException, tagged

from ..models.emboux_mail_webhook import ALLOW_PRIVATE
from .test_portal import EmbouxPortalCase


class Receiver:
    """A webhook receiver on the loopback, in a thread: it keeps each POST's
    headers and body, and answers 204."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers), body.decode()))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@tagged("post_install", "-at_install")
class TestWebhookPortal(EmbouxPortalCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Webhook = cls.env["emboux.mail.webhook"].with_context(active_test=False)
        cls.mailbox_created = cls.env.ref("emboux_mail.webhook_topic_mailbox_created")
        cls.alias_created = cls.env.ref("emboux_mail.webhook_topic_alias_created")

    # -- helpers --------------------------------------------------------------
    def allow_private(self, allow=True):
        self.env["ir.config_parameter"].set_param(ALLOW_PRIVATE, allow and "1")

    def receiver(self):
        receiver = Receiver()
        self.addCleanup(receiver.stop)
        return receiver

    def create_endpoint(self, url, *topics):
        """Create an endpoint in the portal: the answer (a 303 to the list),
        and the endpoint."""
        response = self.post(
            "/my/email/webhooks/new",
            {"url": url, "topic_ids": [topic.id for topic in topics]},
        )
        return response, self.Webhook.search([("url", "=", url)])

    def deliver(self):
        self.env.flush_all()
        self.env["emboux.mail.webhook.delivery"]._cron_deliver(run_seconds=5)

    @staticmethod
    def signatures(headers):
        return headers["webhook-signature"].split(" ")

    @staticmethod
    def verifies(secret, body, headers):
        try:
            Webhook(secret).verify(body, headers)
        except WebhookVerificationError:
            return False
        return True

    # -- endpoints ------------------------------------------------------------
    def test_create_shows_the_secret_once(self):
        self.allow_private()
        self.login(self.acme_user)
        self.assertIn(
            'href="/my/email/webhooks"', self.get("/my/email").text, "a link to it"
        )
        page = self.get("/my/email/webhooks")
        self.assertEqual(page.status_code, 200)
        self.assertIn("You have no webhook endpoint yet", page.text)
        self.assertEqual(self.texts(page, "breadcrumb-item")[1:], ["Email", "Webhooks"])
        url = "http://127.0.0.1:8/acme"
        self.assertError(
            self.post("/my/email/webhooks/new", {"url": url}), 422, "Tick the events"
        )
        self.assertError(
            self.post(
                "/my/email/webhooks/new",
                {"url": " ", "topic_ids": self.mailbox_created.id},
            ),
            422,
            "Type the URL",
        )
        self.assertFalse(self.Webhook.search([("partner_id", "=", self.acme.id)]))

        response, webhook = self.create_endpoint(
            url, self.mailbox_created, self.alias_created
        )
        location = response.headers["Location"]
        self.assertTrue(location.startswith("/my/email/webhooks?flash="), location)
        page = self.follow(response)
        self.assertEqual(page.status_code, 200, page.text[:2000])
        self.assertEqual(page.headers.get("Cache-Control"), "no-store")
        self.assertEqual(
            self.texts(page, "o_emboux_done"), [f"Endpoint {url} created."]
        )
        secret = self.secret_of(page)
        self.assertNotIn(secret, location)
        self.assertTrue(secret.startswith("whsec_"))
        self.assertEqual(webhook.partner_id, self.acme)
        self.assertEqual(webhook.topic_ids, self.mailbox_created | self.alias_created)
        self.assertEqual(webhook.sudo().secret, secret)
        self.assertTrue(webhook.secret_shown)
        # never again: not on a reload, not on the list, not on its page
        self.assertNotIn(secret, self.get(location).text)
        self.assertEqual(len(self.Webhook.search([("url", "=", url)])), 1)
        page = self.get("/my/email/webhooks")
        self.assertNotIn(secret, page.text)
        self.assertFalse(self.texts(page, "o_emboux_secret"))
        rows = self.texts(page, "o_emboux_webhook_row")
        self.assertEqual(rows, [f"{url} mailbox.created alias.created Active"])
        page = self.get(f"/my/email/webhooks/{webhook.id}")
        self.assertEqual(page.status_code, 200)
        self.assertNotIn(secret, page.text)
        self.assertEqual(
            self.texts(page, "breadcrumb-item")[1:], ["Email", "Webhooks", url]
        )
        self.assertIn("No event was sent to this endpoint yet", page.text)

    def test_ssrf_guard(self):
        url = "http://127.0.0.1:9/x"
        self.allow_private(False)
        self.login(self.acme_user)
        response, webhook = self.create_endpoint(url, self.mailbox_created)
        page = self.assertError(
            response, 422, f"Webhook URL {url} is refused", "non-public"
        )
        self.assertFalse(webhook)
        self.assertFalse(self.texts(page, "o_emboux_secret"))
        # the form keeps what was typed
        form = self.texts(page, "o_emboux_webhook_form")
        self.assertTrue(form)
        self.assertIn(f'value="{url}"', page.text)
        self.assertTrue(
            html.fromstring(page.text).xpath(
                f"//input[@name='topic_ids'][@value='{self.mailbox_created.id}']"
                "[@checked]"
            )
        )
        self.allow_private()
        response, webhook = self.create_endpoint(url, self.mailbox_created)
        self.assertEqual(webhook.partner_id, self.acme)
        self.assertTrue(self.secret_of(self.follow(response)))

    def test_no_hosting_no_webhooks(self):
        _company, user = self.make_tenant_user(
            "Initech", "initech_portal", tenant=False
        )
        self.allow_private()
        self.login(user)
        self.assertIn("cannot have webhooks", self.get("/my/email/webhooks").text)
        response, webhook = self.create_endpoint(
            "http://127.0.0.1:9/x", self.mailbox_created
        )
        self.assertError(response, 403, "no mail hosting")
        self.assertFalse(webhook)

    def test_enable_disable_resend_delete(self):
        self.allow_private()
        webhook = self.Webhook.create(
            {
                "url": "http://127.0.0.1:9/acme",
                "partner_id": self.acme.id,
                "topic_ids": [self.mailbox_created.id],
            }
        )
        event = self.env["emboux.mail.webhook.event"].create(
            {
                "message_id": "msg_failed",
                "topic": "mailbox.created",
                "partner_id": self.acme.id,
                "payload": "{}",
                "fanned_out": True,
            }
        )
        Delivery = self.env["emboux.mail.webhook.delivery"]
        failed = Delivery.create(
            {"event_id": event.id, "webhook_id": webhook.id, "state": "failed"}
        )
        delivered_event = event.copy({"message_id": "msg_delivered"})
        delivered = Delivery.create(
            {"event_id": delivered_event.id, "webhook_id": webhook.id}
        )
        delivered.state = "delivered"
        Attempt = self.env["emboux.mail.webhook.attempt"]
        for answer in ("first", "x" * 300):
            Attempt.create(
                {
                    "delivery_id": failed.id,
                    "status": 500,
                    "latency_ms": 12,
                    "answer": answer,
                }
            )
        Attempt.create(
            {
                "delivery_id": delivered.id,
                "status": 204,
                "succeeded": True,
                "latency_ms": 3,
            }
        )
        url = f"/my/email/webhooks/{webhook.id}"
        self.login(self.acme_user)

        page = self.get(url)
        rows = self.texts(page, "o_emboux_webhook_attempt")
        self.assertEqual(len(rows), 3)
        self.assertIn("mailbox.created msg_delivered 204 3 ms", rows[0])
        self.assertIn("500 12 ms " + "x" * 120 + "… Resend", rows[1])
        self.assertIn("500 12 ms first", rows[2])
        # once per failed delivery: on its latest attempt
        self.assertEqual(len(self.texts(page, "o_emboux_webhook_resend")), 1)
        self.assertIn(f"{url}/delivery/{failed.id}/resend", page.text)
        self.assertError(
            self.post(f"{url}/delivery/{delivered.id}/resend"), 409, "Only a failed"
        )
        page = self.follow(self.post(f"{url}/delivery/{failed.id}/resend"))
        self.assertEqual(
            self.texts(page, "o_emboux_done"), ["The event will be sent again shortly."]
        )
        self.assertEqual((failed.state, failed.attempt_count), ("pending", 0))

        # a GET of a form's address only leads to the endpoint's page
        for form, page_url in (
            (f"{url}/disable", url),
            (f"{url}/delivery/{failed.id}/resend", url),
            ("/my/email/webhooks/new", "/my/email/webhooks"),
        ):
            response = self.get(form)
            self.assertEqual(response.headers["Location"].split("?")[0], page_url)
            self.assertEqual(len(self.texts(self.follow(response), "o_emboux_note")), 1)
        self.assertTrue(webhook.active)
        page = self.follow(self.post(f"{url}/disable"))
        self.assertFalse(webhook.active)
        self.assertEqual(self.texts(page, "o_emboux_webhook_state"), ["Disabled"])
        self.assertTrue(self.texts(page, "o_emboux_webhook_enable"))
        webhook.write({"failing_since": fields.Datetime.now(), "disabled_reason": "x"})
        page = self.follow(self.post(f"{url}/enable"))
        self.assertTrue(webhook.active)
        self.assertFalse(webhook.failing_since or webhook.disabled_reason)
        self.assertEqual(self.texts(page, "o_emboux_webhook_state"), ["Active"])

        # deleting asks first, naming the endpoint
        confirm = self.get(f"{url}/delete")
        self.assertEqual(
            self.texts(confirm, "o_emboux_confirm_question"),
            ["Delete the endpoint http://127.0.0.1:9/acme?"],
        )
        self.assertTrue(webhook.exists(), "asking is not deleting")
        page = self.follow(self.post(f"{url}/delete"))
        self.assertEqual(
            self.texts(page, "o_emboux_done"),
            ["Endpoint http://127.0.0.1:9/acme deleted."],
        )
        self.assertFalse(webhook.exists())
        self.assertEqual(self.get(url).status_code, 404)

    def test_other_tenant_gets_404(self):
        self.allow_private()
        acme = self.Webhook.create(
            {
                "url": "http://127.0.0.1:9/acme",
                "partner_id": self.acme.id,
                "topic_ids": [self.mailbox_created.id],
            }
        )
        everyone = self.Webhook.create(
            {"url": "http://127.0.0.1:9/all", "topic_ids": [self.mailbox_created.id]}
        )
        globex = self.Webhook.create(
            {
                "url": "http://127.0.0.1:9/globex",
                "partner_id": self.globex.id,
                "topic_ids": [self.mailbox_created.id],
            }
        )
        event = self.env["emboux.mail.webhook.event"].create(
            {
                "message_id": "msg_acme",
                "topic": "mailbox.created",
                "partner_id": self.acme.id,
                "payload": "{}",
                "fanned_out": True,
            }
        )
        delivery = self.env["emboux.mail.webhook.delivery"].create(
            {"event_id": event.id, "webhook_id": acme.id, "state": "failed"}
        )
        secret = acme.sudo().secret
        self.login(self.globex_user)
        for webhook in (acme, everyone):
            url = f"/my/email/webhooks/{webhook.id}"
            with self.subTest(url=url):
                self.assertEqual(self.get(url).status_code, 404)
                for tail in (
                    "/rotate",
                    "/disable",
                    "/enable",
                    "/delete",
                    f"/delivery/{delivery.id}/resend",
                ):
                    self.assertEqual(self.post(url + tail).status_code, 404)
                for tail in ("/rotate", "/delete"):
                    self.assertEqual(self.get(url + tail).status_code, 404)
        # Globex's own endpoint with Acme's delivery
        url = f"/my/email/webhooks/{globex.id}/delivery/{delivery.id}/resend"
        self.assertEqual(self.post(url).status_code, 404)
        self.assertEqual(self.get("/my/email/webhooks/999999999").status_code, 404)
        page = self.get("/my/email/webhooks")
        self.assertEqual(
            self.texts(page, "o_emboux_webhook_row"),
            ["http://127.0.0.1:9/globex mailbox.created Active"],
        )
        self.assertTrue(acme.exists() and acme.active and everyone.active)
        self.assertEqual(acme.sudo().secret, secret)
        self.assertEqual(delivery.state, "failed")

    def test_models_closed_to_portal_users(self):
        """The portal's pages are the only way in: no RPC reaches the
        endpoints, their secrets or their deliveries."""
        self.login(self.acme_user)
        for model in (
            "emboux.mail.webhook",
            "emboux.mail.webhook.delivery",
            "emboux.mail.webhook.attempt",
            "emboux.mail.webhook.event",
        ):
            with (
                self.subTest(model=model),
                self.assertRaises(JsonRpcException) as raised,
            ):
                self.make_jsonrpc_request(
                    "/web/dataset/call_kw",
                    {
                        "model": model,
                        "method": "search_read",
                        "args": [[]],
                        "kwargs": {},
                    },
                )
            self.assertEqual(raised.exception.args[0], "odoo.exceptions.AccessError")

    # -- deliveries -----------------------------------------------------------
    def test_tenants_hear_their_own_events_only(self):
        self.allow_private()
        receivers, secrets = {}, {}
        for tenant, user in (
            (self.acme, self.acme_user),
            (self.globex, self.globex_user),
        ):
            receivers[tenant] = self.receiver()
            self.login(user)
            response, _webhook = self.create_endpoint(
                receivers[tenant].url, self.mailbox_created, self.alias_created
            )
            secrets[tenant] = self.secret_of(self.follow(response))
        for domain in (self.domain, self.other_domain):
            self.Mailbox.create(
                {"email": f"sales@{domain.name}", "password": "Initial-Secret-1"}
            )
            self.Alias.create(
                {"source": f"shop@{domain.name}", "destination": f"sales@{domain.name}"}
            )
        self.deliver()

        domains = {self.acme: self.domain, self.globex: self.other_domain}
        for tenant, other in ((self.acme, self.globex), (self.globex, self.acme)):
            received = receivers[tenant].received
            self.assertEqual(len(received), 2, received)
            events = []
            for headers, body in received:
                event = Webhook(secrets[tenant]).verify(body, headers)
                self.assertEqual(
                    event["data"]["partner_ref"], tenant.emboux_partner_ref
                )
                self.assertFalse(self.verifies(secrets[other], body, headers))
                changed = event["data"]["object"]
                events.append(
                    (event["type"], changed.get("email", changed.get("source")))
                )
            name = domains[tenant].name
            self.assertEqual(
                sorted(events),
                [
                    ("alias.created", f"shop@{name}"),
                    ("mailbox.created", f"sales@{name}"),
                ],
            )
        # the log is in the endpoint's page
        webhook = self.Webhook.search([("partner_id", "=", self.globex.id)])
        self.assertEqual(set(webhook.delivery_ids.mapped("state")), {"delivered"})
        page = self.get(f"/my/email/webhooks/{webhook.id}")
        rows = self.texts(page, "o_emboux_webhook_attempt")
        self.assertEqual(len(rows), 2)
        self.assertTrue(all(" 204 " in row for row in rows), rows)
        self.assertFalse(self.texts(page, "o_emboux_webhook_resend"))

    def test_rotation_signs_with_both_secrets(self):
        self.allow_private()
        receiver = self.receiver()
        self.login(self.acme_user)
        response, webhook = self.create_endpoint(receiver.url, self.mailbox_created)
        old = self.secret_of(self.follow(response))
        url = f"/my/email/webhooks/{webhook.id}"
        # a new secret asks first, naming the endpoint
        confirm = self.get(f"{url}/rotate")
        self.assertEqual(
            self.texts(confirm, "o_emboux_confirm_question"),
            [f"Make a new signing secret for {receiver.url}?"],
        )
        self.assertEqual(webhook.sudo().secret, old, "asking is not rotating")
        response = self.post(f"{url}/rotate")
        self.assertTrue(response.headers["Location"].startswith(f"{url}?flash="))
        page = self.follow(response)
        self.assertEqual(page.status_code, 200, page.text[:2000])
        self.assertEqual(page.headers.get("Cache-Control"), "no-store")
        new = self.secret_of(page)
        self.assertNotEqual(new, old)
        self.assertEqual(webhook.sudo().secret, new)
        self.assertTrue(self.texts(page, "o_emboux_webhook_overlap"))
        # a reload shows it no more, and makes no other secret
        page = self.get(response.headers["Location"])
        self.assertNotIn(new, page.text)
        self.assertNotIn(old, page.text)
        self.assertEqual(webhook.sudo().secret, new)

        self.Mailbox.create(
            {"email": "sales@acme.test", "password": "Initial-Secret-1"}
        )
        self.deliver()
        [(headers, body)] = receiver.received
        signatures = self.signatures(headers)
        self.assertEqual(len(signatures), 2)
        Webhook(old).verify(body, headers)
        Webhook(new).verify(body, headers)
        # one signature with each secret
        verified_by = []
        for signature in signatures:
            alone = dict(headers, **{"webhook-signature": signature})
            verified_by.append(
                [secret for secret in (old, new) if self.verifies(secret, body, alone)]
            )
        self.assertEqual(sorted(verified_by), sorted([[old], [new]]))

        # once the overlap is over, the new secret alone signs
        webhook.sudo().previous_secret_until = fields.Datetime.now()
        self.Mailbox.create({"email": "news@acme.test", "password": "Initial-Secret-1"})
        self.deliver()
        headers, body = receiver.received[1]
        self.assertEqual(len(self.signatures(headers)), 1)
        Webhook(new).verify(body, headers)
        self.assertFalse(self.verifies(old, body, headers))
