"""Lifecycle webhooks: what the business transaction queues (one INSERT, and
only when an endpoint listens), to whom the events go, and how the delivery
job signs, retries, gives up and protects the server's own network."""

import collections
import contextlib
import http.server
import json
import logging
import re
import threading
import time
from datetime import datetime, timedelta
from unittest.mock import patch
from urllib.parse import urlsplit

from freezegun import freeze_time
from standardwebhooks import Webhook, WebhookVerificationError

from odoo import Command, fields
from odoo.exceptions import ValidationError
from odoo.sql_db import Cursor
from odoo.tests import HttpCase, TransactionCase, tagged
from odoo.tests.common import _super_send
from odoo.tools import SQL

from ..models.emboux_mail_domain import MEBIBYTE
from ..models.emboux_mail_grace import REMINDER_DAYS
from ..models.emboux_mail_mailbox import USAGE_TABLE
from ..models.emboux_mail_webhook import ALLOW_PRIVATE, DISABLE_AFTER_HOURS
from ..models.emboux_mail_webhook_delivery import RETRY_SCHEDULE, TIMEOUT
from .common import EmbouxHostingSetup

_logger = logging.getLogger(__name__)

RECEIVER_HOST = "127.0.0.1"
# what the receiver does instead of answering with a status
RESET = "reset"  # closes the connection without a word
SLOW = "slow"  # answers 200 after the job's timeout
REDIRECT = 302


Request = collections.namedtuple("Request", "method path headers body")


class Receiver:
    """A webhook receiver on 127.0.0.1, in a thread of its own: it records
    each request and answers as the test scripted it (a status, ``RESET``
    or ``SLOW``; ``default`` once the script is spent)."""

    def __init__(self, slow_seconds):
        self.requests = []
        self.script = collections.deque()
        self.default = 200
        self.slow_seconds = slow_seconds
        self.server = http.server.ThreadingHTTPServer((RECEIVER_HOST, 0), _Handler)
        self.server.receiver = self
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/hook"):
        return f"http://{RECEIVER_HOST}:{self.server.server_port}{path}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def answer(self):
        return self.script.popleft() if self.script else self.default


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        receiver = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        receiver.requests.append(
            Request(
                self.command,
                self.path,
                {name.lower(): value for name, value in self.headers.items()},
                self.rfile.read(length).decode(),
            )
        )
        answer = receiver.answer()
        if answer == RESET:
            self.close_connection = True
            return
        if answer == SLOW:
            time.sleep(receiver.slow_seconds)
            answer = 200
        # the job may have hung up already (SLOW)
        with contextlib.suppress(OSError):
            self.send_response(answer)
            if answer == REDIRECT:
                self.send_header("Location", receiver.url("/moved"))
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    # a followed redirect would come back as a GET: recorded all the same
    do_GET = do_POST

    def log_message(self, *args):
        """Quiet: the test reads ``Receiver.requests``."""


class WebhookSetup(EmbouxHostingSetup):
    """Two customers, Acme and Globex, each with a domain, on a plan without
    limits, and shortcuts to the webhook models."""

    @classmethod
    def setup_webhooks(cls):
        cls.setup_hosting(
            domains_allowed=0, mailboxes_per_domain=0, aliases_per_mailbox=0
        )
        Partner = cls.env["res.partner"]
        cls.tenant, cls.other = Partner.create(
            [
                {
                    "name": name,
                    "is_company": True,
                    "email": f"admin@{name.lower()}.example",
                    "emboux_plan_id": cls.plan.id,
                }
                for name in ("Acme", "Globex")
            ]
        )
        cls.domain = cls.Domain.create(
            {"name": "acme.example", "partner_id": cls.tenant.id}
        )
        cls.other_domain = cls.Domain.create(
            {"name": "globex.example", "partner_id": cls.other.id}
        )
        cls.Webhook = cls.env["emboux.mail.webhook"]
        cls.Event = cls.env["emboux.mail.webhook.event"]
        cls.Delivery = cls.env["emboux.mail.webhook.delivery"]
        cls.params = cls.env["ir.config_parameter"].sudo()

    def make_endpoint(self, *topics, partner=None, url="http://127.0.0.1:9/hook"):
        """An endpoint hearing ``topics`` (codes) of ``partner``, or of every
        customer without one."""
        found = self.env["emboux.mail.webhook.topic"].search([("code", "in", topics)])
        self.assertEqual(len(found), len(topics), "unknown event type")
        return self.Webhook.create(
            {
                "url": url,
                "partner_id": partner.id if partner else False,
                "topic_ids": [Command.set(found.ids)],
            }
        )

    def events(self, topic, since=0):
        return self.Event.search([("topic", "=", topic), ("id", ">", since)])

    @contextlib.contextmanager
    def assertEmits(self, topic, partner=None):
        """The block queues exactly one ``topic`` event, for ``partner``
        (Acme by default); the dict yielded holds its payload afterwards."""
        since = self.Event.search([], limit=1).id or 0
        payload = {}
        yield payload
        events = self.events(topic, since)
        self.assertEqual(len(events), 1, f"{topic}: {len(events)} events queued")
        self.assertEqual(events.partner_id, partner or self.tenant)
        payload.update(json.loads(events.payload))
        self.assertEqual(payload["type"], topic)
        self.assertEqual(
            payload["data"]["partner_ref"], (partner or self.tenant).emboux_partner_ref
        )


@tagged("post_install", "-at_install")
class TestWebhookEvents(WebhookSetup, TransactionCase):
    """What a change queues, in its own transaction, and to which endpoints
    the fan-out gives it (no receiver: nothing is sent here)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_webhooks()
        cls.params.set_param(ALLOW_PRIVATE, "1")

    @contextlib.contextmanager
    def capture_queries(self):
        """The SQL this test's cursor runs in the block, pending writes
        flushed before and after."""
        queries = []
        execute = Cursor.execute
        cr = self.env.cr

        def spy(cursor, query, params=None, log_exceptions=True):
            if cursor is cr:
                code = query.code if isinstance(query, SQL) else query
                # savepoints are named at random: compare them by kind
                queries.append(re.sub(r'SAVEPOINT "[^"]+"', "SAVEPOINT", code))
            return execute(cursor, query, params, log_exceptions)

        self.env.flush_all()
        with patch.object(Cursor, "execute", spy):
            yield queries
            self.env.flush_all()

    def create_mailbox_queries(self, name):
        """The queries of one mailbox creation, after a first one that warms
        the caches (the endpoints' ormcache among them)."""
        self.Mailbox.create({"email": f"warm-{name}@acme.example"})
        with self.capture_queries() as queries:
            self.Mailbox.create({"email": f"{name}@acme.example"})
        return queries

    # -- the business transaction ---------------------------------------------
    def test_one_insert_per_event(self):
        """The acceptance criterion: an endpoint hearing mailbox.created
        adds exactly one query to the creation, the event's INSERT."""
        without = self.create_mailbox_queries("without")
        self.assertFalse(self.events("mailbox.created"))
        self.make_endpoint("mailbox.created", partner=self.tenant)
        with_one = self.create_mailbox_queries("with")
        _logger.info(
            "mailbox create: %s queries without an endpoint, %s with one",
            len(without),
            len(with_one),
        )
        self.assertEqual(len(with_one) - len(without), 1)
        extra = collections.Counter(with_one) - collections.Counter(without)
        self.assertEqual(sum(extra.values()), 1, list(extra))
        [insert] = extra
        self.assertRegex(insert, r'^\s*INSERT INTO "?emboux_mail_webhook_event"?\b')
        # one event per mailbox created since the endpoint (warm-up included)
        self.assertEqual(len(self.events("mailbox.created")), 2)

    def test_nobody_listening_queues_nothing(self):
        self.make_endpoint("alias.created", partner=self.tenant)
        self.make_endpoint("mailbox.created", partner=self.other)
        self.Mailbox.create({"email": "info@acme.example"})
        self.assertFalse(self.events("mailbox.created"))
        # Globex's endpoint hears Globex's mailboxes
        self.Mailbox.create({"email": "info@globex.example"})
        self.assertEqual(self.events("mailbox.created").partner_id, self.other)

    # -- endpoints -----------------------------------------------------------
    def test_private_addresses_are_refused(self):
        """An endpoint must not make the server call its own network; the
        setting that allows it exists for receivers on the same host."""
        private = (
            "http://127.0.0.1/",
            "http://10.0.0.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost:8069/",
        )
        not_http = (
            "ftp://example.com/",
            "file:///etc/passwd",
            "javascript:x",
            "",
            "http://[::1",
        )
        self.params.set_param(ALLOW_PRIVATE, "0")
        for url in private + not_http:
            with self.subTest(url=url), self.assertRaises(ValidationError):
                self.make_endpoint("mailbox.created", url=url)
        self.params.set_param(ALLOW_PRIVATE, "1")
        for url in private:
            with self.subTest(url=url):
                self.assertTrue(self.make_endpoint("mailbox.created", url=url))
        for url in not_http:
            with self.subTest(url=url), self.assertRaises(ValidationError):
                self.make_endpoint("mailbox.created", url=url)

    def test_subscription_cache_follows_the_endpoints(self):
        """Each change is its own request here: flushed, as a request's end
        does, before the next one reads the subscriptions."""
        Webhook = self.Webhook
        heard = (self.tenant.id, "mailbox.created")

        def subscriptions():
            self.env.flush_all()
            return Webhook._emboux_subscriptions()

        self.assertNotIn(heard, subscriptions())
        endpoint = self.make_endpoint("mailbox.created", partner=self.tenant)
        self.assertIn(heard, subscriptions())
        endpoint.active = False
        self.assertNotIn(heard, subscriptions())
        self.Mailbox.create({"email": "off@acme.example"})
        self.assertFalse(self.events("mailbox.created"))
        endpoint.action_enable()
        self.assertIn(heard, subscriptions())
        endpoint.topic_ids = self.env["emboux.mail.webhook.topic"].search(
            [("code", "=", "alias.created")]
        )
        self.assertNotIn(heard, subscriptions())
        self.assertIn((self.tenant.id, "alias.created"), subscriptions())
        endpoint.partner_id = False
        self.assertIn((0, "alias.created"), subscriptions())
        endpoint.unlink()
        self.assertFalse(subscriptions())

    def test_a_change_is_heard_by_its_own_transaction(self):
        """An endpoint enabled by a write (which the ORM flushes later), then
        an event in the same transaction: the event is queued, and the
        subscriptions cached then are not those the table held before the
        write (they would stay in this worker's cache after the commit)."""
        mailbox = self.Mailbox.create({"email": "info@acme.example"})
        endpoint = self.make_endpoint("mailbox.password_changed", partner=self.tenant)
        endpoint.active = False
        self.env.flush_all()
        endpoint.action_enable()
        queued = []
        for _change in range(2):
            mailbox.password = self.Mailbox._emboux_generate_password()
            self.env.flush_all()
            queued.append(len(self.events("mailbox.password_changed")))
        self.assertEqual(queued, [1, 2])

    def test_fan_out(self):
        """A customer's endpoint gets its customer's events, one without a
        customer everybody's; only the types subscribed to, and only while
        active when the event is sent out."""
        acme = self.make_endpoint("mailbox.created", partner=self.tenant)
        globex = self.make_endpoint("mailbox.created", partner=self.other)
        everyone = self.make_endpoint("mailbox.created")
        aliases_only = self.make_endpoint("alias.created", partner=self.tenant)
        disabled = self.make_endpoint("mailbox.created", partner=self.tenant)
        disabled.active = False
        stopped_since = self.make_endpoint("mailbox.created", partner=self.tenant)
        acme_box = self.Mailbox.create({"email": "info@acme.example"})
        globex_box = self.Mailbox.create({"email": "info@globex.example"})
        stopped_since.active = False
        self.env.flush_all()
        self.assertEqual(self.Event._emboux_fan_out(), 2)
        self.assertFalse(self.Event._emboux_fan_out())

        def objects(endpoint):
            deliveries = self.Delivery.search([("webhook_id", "=", endpoint.id)])
            self.assertEqual(set(deliveries.mapped("state")) - {"pending"}, set())
            return sorted(
                json.loads(delivery.event_id.payload)["data"]["object"]["id"]
                for delivery in deliveries
            )

        self.assertEqual(objects(acme), [acme_box.id])
        self.assertEqual(objects(globex), [globex_box.id])
        self.assertEqual(objects(everyone), sorted((acme_box | globex_box).ids))
        self.assertEqual(objects(aliases_only), [])
        self.assertEqual(objects(disabled), [])
        self.assertEqual(objects(stopped_since), [])

    # -- emission points ---------------------------------------------------------
    def listen_to_everything(self):
        topics = self.env["emboux.mail.webhook.topic"].search([])
        self.make_endpoint(*topics.mapped("code"), partner=self.tenant)

    def test_domain_events(self):
        self.listen_to_everything()
        with self.assertEmits("domain.created") as payload:
            domain = self.Domain.create(
                {"name": "new.example", "partner_id": self.tenant.id, "verified": False}
            )
        self.assertEqual(
            payload["data"]["object"],
            {
                "id": domain.id,
                "name": "new.example",
                "created_at": domain.create_date.strftime("%Y-%m-%dT%H:%M:%S"),
                "verified": False,
                "suspended": False,
                "suspension_reason": None,
                "parent_domain": None,
                "is_wildcard": False,
            },
        )
        self.assertFalse(self.events("domain.verified"))
        with self.assertEmits("domain.verified") as payload:
            domain.action_vouch()
        self.assertEqual(payload["data"]["verified_by"], "operator")
        with self.assertEmits("domain.suspended") as payload:
            domain.action_suspend()
        self.assertEqual(payload["data"]["reason"], "operator")
        self.assertTrue(payload["data"]["object"]["suspended"])
        with self.assertEmits("domain.activated") as payload:
            domain.action_activate()
        self.assertFalse(payload["data"]["object"]["suspended"])
        with self.assertEmits("domain.deleted") as payload:
            domain.unlink()
        self.assertEqual(payload["data"]["object"]["name"], "new.example")

    def test_mailbox_events(self):
        self.listen_to_everything()
        password = self.Mailbox._emboux_generate_password()
        with self.assertEmits("mailbox.created") as payload:
            mailbox = self.Mailbox.create(
                {"email": "info@acme.example", "password": password}
            )
        # the password given at creation is no change of password
        self.assertFalse(self.events("mailbox.password_changed"))
        self.assertEqual(payload["data"]["object"]["email"], "info@acme.example")
        new_password = self.Mailbox._emboux_generate_password()
        with self.assertEmits("mailbox.password_changed") as payload:
            mailbox.password = new_password
        self.assertEqual(payload["data"]["object"]["id"], mailbox.id)
        for event in self.Event.search([]):
            self.assertNotIn(password, event.payload)
            self.assertNotIn(new_password, event.payload)
        with self.assertEmits("mailbox.deleted") as payload:
            mailbox.unlink()
        self.assertEqual(payload["data"]["object"]["email"], "info@acme.example")

    def test_quota_near_full(self):
        self.listen_to_everything()
        mailbox = self.Mailbox.create({"email": "full@acme.example"})
        used = int(mailbox.quota_mb * 0.9 * MEBIBYTE)
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                "INSERT INTO %s (email, bytes, messages) VALUES (%s, %s, 1)",
                SQL.identifier(USAGE_TABLE),
                mailbox.email,
                used,
            )
        )
        self.env.invalidate_all()
        with self.assertEmits("mailbox.quota_near_full") as payload:
            self.Mailbox._cron_usage_warnings()
        self.assertEqual(payload["data"]["object"]["id"], mailbox.id)
        self.assertAlmostEqual(payload["data"]["used_mb"], used / MEBIBYTE, places=1)
        self.assertAlmostEqual(payload["data"]["used_percent"], 90, places=0)

    def test_alias_events(self):
        self.listen_to_everything()
        with self.assertEmits("alias.created") as payload:
            alias = self.Alias.create(
                {"source": "sales@acme.example", "destination": "boss@elsewhere.org"}
            )
        self.assertEqual(
            {k: payload["data"]["object"][k] for k in ("id", "source", "destination")},
            {
                "id": alias.id,
                "source": "sales@acme.example",
                "destination": "boss@elsewhere.org",
            },
        )
        with self.assertEmits("alias.deleted"):
            alias.unlink()

    def test_key_events(self):
        self.listen_to_everything()
        with self.assertEmits("key.created") as payload:
            key, token = self.Key._emboux_generate({"partner_id": self.tenant.id})
        self.assertIsNone(payload["data"]["object"]["token"])
        self.assertNotIn(token, json.dumps(payload))
        with self.assertEmits("key.revoked") as payload:
            key.action_revoke()
        self.assertFalse(payload["data"]["object"]["active"])

    def test_grace_events(self):
        """Over the domain quota a grace period opens, reminds and closes
        once back within it."""
        two, one = self.env["emboux.mail.plan"].create(
            [
                {"name": "Two", "domains_allowed": 2},
                {"name": "One", "domains_allowed": 1},
            ]
        )
        customer = self.env["res.partner"].create(
            {
                "name": "Initech",
                "is_company": True,
                "email": "billing@initech.example",
                "emboux_plan_id": two.id,
            }
        )
        domains = self.Domain.create(
            [
                {"name": f"d{n}.initech.example", "partner_id": customer.id}
                for n in (1, 2)
            ]
        )
        topics = self.env["emboux.mail.webhook.topic"].search(
            [("code", "like", "grace.")]
        )
        self.make_endpoint(*topics.mapped("code"), partner=customer)
        customer.emboux_plan_id = one
        Grace = self.env["emboux.mail.grace"]
        with self.assertEmits("grace.opened", customer) as payload:
            Grace._emboux_run(customer)
        grace = Grace.search([("partner_id", "=", customer.id)])
        self.assertEqual(payload["data"]["object"]["id"], grace.id)
        with self.assertEmits("grace.reminder_sent", customer) as payload:
            grace._emboux_advance(grace.date_start + timedelta(days=REMINDER_DAYS[0]))
        self.assertEqual(payload["data"]["day"], REMINDER_DAYS[0])
        with self.assertEmits("grace.closed", customer) as payload:
            domains[-1].unlink()
            Grace._emboux_run(customer)
        self.assertEqual(payload["data"]["object"]["state"], "closed")

    def test_bounce_guard_tripped(self):
        self.listen_to_everything()
        Counter = self.env["emboux.mail.outbound.counter"].sudo()
        counter = Counter.create({"domain_id": self.domain.id})
        counter.write(
            {"delivered_count": 100, "bounce_count": 7, "guard_tripped": True}
        )
        with self.assertEmits("outbound.bounce_guard_tripped") as payload:
            Counter._cron_bounce_guard()
        self.assertEqual(
            (payload["data"]["bounce_count"], payload["data"]["delivered_count"]),
            (7, 100),
        )
        self.assertFalse(self.events("outbound.limit_reached"))
        since = self.Event.search([], limit=1).id or 0
        Counter._cron_bounce_guard()
        self.assertFalse(self.events("outbound.bounce_guard_tripped", since))

    def test_limit_reached_once_a_day(self):
        self.listen_to_everything()
        Counter = self.env["emboux.mail.outbound.counter"].sudo()
        counter = Counter.create({"domain_id": self.domain.id})
        counter.write({"sent_today": 100, "refused_today": 3})
        with self.assertEmits("outbound.limit_reached") as payload:
            Counter._cron_bounce_guard()
        self.assertEqual(payload["data"]["refused_today"], 3)
        since = self.Event.search([], limit=1).id or 0
        counter.refused_today = 5
        Counter._cron_bounce_guard()
        self.assertFalse(self.events("outbound.limit_reached", since))
        with (
            freeze_time(fields.Date.today() + timedelta(days=1)),
            self.assertEmits("outbound.limit_reached") as payload,
        ):
            Counter._cron_bounce_guard()
        self.assertEqual(payload["data"]["refused_today"], 5)


@tagged("post_install", "-at_install")
class TestWebhookDelivery(WebhookSetup, HttpCase):
    """The delivery job against a real receiver. An HttpCase: in the
    registry's test mode the job's own cursors share the test transaction,
    so that it sees what the test created."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_webhooks()
        cls.params.set_param(ALLOW_PRIVATE, "1")
        cls.params.set_param(RETRY_SCHEDULE, "0.01,0.01,0.01")
        cls.params.set_param(TIMEOUT, "0.5")

    @classmethod
    def _request_handler(cls, s, r, /, **kw):
        """Send to the receiver with the job's own timeout: the base class
        raises any timeout to 10 s."""
        if urlsplit(r.url).hostname == RECEIVER_HOST:
            return _super_send(s, r, **kw)
        return super()._request_handler(s, r, **kw)

    def setUp(self):
        super().setUp()
        timeout = float(self.params.get_param(TIMEOUT))
        self.receiver = Receiver(slow_seconds=timeout * 2)
        self.addCleanup(self.receiver.close)
        self.endpoint = self.make_endpoint(
            "mailbox.created",
            "mailbox.password_changed",
            partner=self.tenant,
            url=self.receiver.url(),
        )

    def schedule(self):
        return self.params.get_param(RETRY_SCHEDULE).split(",")

    def deliver(self):
        """Run the delivery job until no active endpoint has a delivery
        pending. Due times are compared in whole seconds: a retry due a
        fraction of a second later waits for the next one."""
        self.env.flush_all()
        for _run in range(2 * len(self.schedule()) + 2):
            self.Delivery._cron_deliver(run_seconds=30)
            pending = self.Delivery.search(
                [("state", "=", "pending"), ("webhook_id.active", "=", True)]
            )
            if not pending:
                return
            due = min(pending.mapped("next_attempt_at"))
            time.sleep(max((due - datetime.now()).total_seconds(), 0) + 1)
        self.fail(f"still pending: {pending}")

    def create_mailbox(self, name="info"):
        """A mailbox of Acme, and the event its creation queued."""
        mailbox = self.Mailbox.create({"email": f"{name}@acme.example"})
        event = self.Event.search([("topic", "=", "mailbox.created")], limit=1)
        self.assertEqual(json.loads(event.payload)["data"]["object"]["id"], mailbox.id)
        return mailbox, event

    def delivery(self, event):
        return self.Delivery.search(
            [("event_id", "=", event.id), ("webhook_id", "=", self.endpoint.id)]
        )

    def attempts(self, delivery):
        return delivery.attempt_ids.sorted("id")

    def verify(self, request, secret=None):
        """The payload, once the signature checked with ``secret`` (the
        endpoint's by default)."""
        return Webhook(secret or self.endpoint.sudo().secret).verify(
            request.body, request.headers
        )

    # -- delivery ------------------------------------------------------------
    def test_signed_delivery(self):
        mailbox, event = self.create_mailbox()
        password = self.Mailbox._emboux_generate_password()
        mailbox.password = password
        self.deliver()
        self.assertEqual(len(self.receiver.requests), 2)
        created, changed = sorted(
            self.receiver.requests, key=lambda r: json.loads(r.body)["type"]
        )
        self.assertEqual(created.headers["webhook-id"], event.message_id)
        self.assertEqual(created.headers["content-type"], "application/json")
        payload = self.verify(created)
        self.assertEqual(payload["type"], "mailbox.created")
        stamp = datetime.fromisoformat(payload["timestamp"])
        self.assertLess(abs(stamp - mailbox.create_date), timedelta(minutes=1))
        self.assertEqual(payload["data"]["partner_ref"], self.tenant.emboux_partner_ref)
        self.assertEqual(
            payload["data"]["object"],
            {
                "id": mailbox.id,
                "domain_id": self.domain.id,
                "email": "info@acme.example",
                "quota_mb": mailbox.quota_mb,
                "created_at": mailbox.create_date.strftime("%Y-%m-%dT%H:%M:%S"),
            },
        )
        self.assertEqual(self.verify(changed)["type"], "mailbox.password_changed")
        self.assertNotIn(password, changed.body)
        self.assertNotIn(password, str(changed.headers))
        # a signature made with another secret does not verify
        with self.assertRaises(WebhookVerificationError):
            self.verify(created, "whsec_" + "A" * 32)
        delivery = self.delivery(event)
        self.assertRecordValues(
            delivery, [{"state": "delivered", "attempt_count": 1, "last_status": 200}]
        )
        self.assertTrue(delivery.delivered_at)
        [attempt] = delivery.attempt_ids
        self.assertTrue(attempt.succeeded)
        self.assertEqual(attempt.message_id, event.message_id)

    def test_retries_keep_the_event_id(self):
        self.receiver.script.extend([500, RESET, 200])
        _mailbox, event = self.create_mailbox()
        self.deliver()
        delivery = self.delivery(event)
        self.assertRecordValues(
            delivery, [{"state": "delivered", "attempt_count": 3, "last_status": 200}]
        )
        attempts = self.attempts(delivery)
        self.assertEqual(attempts.mapped("status"), [500, 0, 200])
        self.assertEqual(attempts.mapped("succeeded"), [False, False, True])
        self.assertIn("ConnectionError", attempts[1].answer)
        self.assertEqual(
            [r.headers["webhook-id"] for r in self.receiver.requests],
            [event.message_id] * 3,
        )
        for request in self.receiver.requests:
            self.verify(request)
        # the success ended the failing streak the first failure started
        self.assertFalse(self.endpoint.failing_since)
        self.assertTrue(self.endpoint.active)

    def test_schedule_exhausted_then_resent(self):
        self.receiver.script.extend([SLOW, RESET])
        self.receiver.default = 500
        _mailbox, event = self.create_mailbox()
        self.deliver()
        delivery = self.delivery(event)
        tries = len(self.schedule()) + 1
        self.assertRecordValues(
            delivery, [{"state": "failed", "attempt_count": tries, "last_status": 500}]
        )
        self.assertFalse(delivery.next_attempt_at)
        attempts = self.attempts(delivery)
        self.assertEqual(attempts.mapped("status"), [0, 0] + [500] * (tries - 2))
        self.assertIn("Timeout", attempts[0].answer)
        timeout_ms = float(self.params.get_param(TIMEOUT)) * 1000
        self.assertGreaterEqual(attempts[0].latency_ms, timeout_ms * 0.9)
        self.assertEqual(len(self.receiver.requests), tries)
        # failing for less than the hours allowed: still active
        self.assertTrue(self.endpoint.failing_since)
        self.assertTrue(self.endpoint.active)

        self.receiver.default = 200
        delivery.action_resend()
        self.deliver()
        self.assertRecordValues(
            delivery, [{"state": "delivered", "attempt_count": 1, "last_status": 200}]
        )
        self.assertEqual(len(self.attempts(delivery)), tries + 1)
        resent = self.receiver.requests[-1]
        self.assertEqual(resent.headers["webhook-id"], event.message_id)
        self.verify(resent)

    def test_redirects_are_not_followed(self):
        self.receiver.default = REDIRECT
        _mailbox, event = self.create_mailbox()
        self.deliver()
        delivery = self.delivery(event)
        self.assertEqual(delivery.state, "failed")
        self.assertEqual(set(self.attempts(delivery).mapped("status")), {REDIRECT})
        self.assertEqual(
            {(r.method, r.path) for r in self.receiver.requests}, {("POST", "/hook")}
        )
        self.assertEqual(len(self.receiver.requests), delivery.attempt_count)

    # -- disabling -----------------------------------------------------------
    def test_gone_disables_the_endpoint(self):
        self.receiver.default = 410
        _mailbox, event = self.create_mailbox()
        self.deliver()
        self.assertFalse(self.endpoint.active)
        self.assertIn("410", self.endpoint.disabled_reason)
        self.assertIn(
            self.endpoint.disabled_reason,
            self.endpoint.message_ids[0].body,
        )
        delivery = self.delivery(event)
        self.assertRecordValues(delivery, [{"state": "pending", "attempt_count": 1}])
        # its retry comes due and another mailbox is made: nothing is sent
        time.sleep(1)
        self.Mailbox.create({"email": "second@acme.example"})
        self.deliver()
        self.assertEqual(len(self.receiver.requests), 1)
        self.assertEqual(delivery.attempt_count, 1)

    def test_long_failure_disables_and_tells_the_owner(self):
        self.params.set_param(DISABLE_AFTER_HOURS[0], "1")
        self.endpoint.sudo().failing_since = fields.Datetime.now() - timedelta(hours=2)
        self.receiver.default = 500
        _mailbox, event = self.create_mailbox()
        self.deliver()
        self.assertFalse(self.endpoint.active)
        self.assertIn("failed since", self.endpoint.disabled_reason)
        told = self.endpoint.message_ids.filtered("partner_ids")
        self.assertEqual(told.partner_ids, self.tenant)
        self.assertIn(self.endpoint.disabled_reason, told.body)
        self.assertEqual(len(self.receiver.requests), 1)
        self.assertEqual(self.delivery(event).attempt_count, 1)

    def test_success_clears_failing_since(self):
        self.endpoint.sudo().failing_since = fields.Datetime.now() - timedelta(
            minutes=10
        )
        _mailbox, event = self.create_mailbox()
        self.deliver()
        self.assertEqual(self.delivery(event).state, "delivered")
        self.assertFalse(self.endpoint.failing_since)
        self.assertTrue(self.endpoint.active)

    # -- secrets and addresses -------------------------------------------------
    def test_rotation_overlap(self):
        """During the overlap a receiver still holding the previous secret
        verifies; afterwards only the new one signs."""
        previous = self.endpoint.sudo().secret
        current = self.endpoint._emboux_rotate_secret()
        self.assertNotEqual(previous, current)
        self.create_mailbox("during")
        self.deliver()
        [during] = self.receiver.requests
        self.assertEqual(len(during.headers["webhook-signature"].split()), 2)
        self.verify(during, previous)
        self.verify(during, current)

        self.endpoint.sudo().previous_secret_until = fields.Datetime.now() - timedelta(
            seconds=1
        )
        self.create_mailbox("after")
        self.deliver()
        after = self.receiver.requests[-1]
        self.assertEqual(len(after.headers["webhook-signature"].split()), 1)
        self.verify(after, current)
        with self.assertRaises(WebhookVerificationError):
            self.verify(after, previous)

    def test_private_address_refused_at_delivery(self):
        """An endpoint saved while private addresses were allowed is not
        called once they are not."""
        self.params.set_param(ALLOW_PRIVATE, "0")
        _mailbox, event = self.create_mailbox()
        self.deliver()
        self.assertFalse(self.receiver.requests)
        delivery = self.delivery(event)
        self.assertEqual(delivery.state, "failed")
        attempts = self.attempts(delivery)
        self.assertEqual(set(attempts.mapped("status")), {0})
        for attempt in attempts:
            self.assertTrue(attempt.answer.startswith("UnsafeAddress"), attempt.answer)
