"""/webhooks/ (master only): lifecycle webhook endpoints, their secret
shown once, validated by the rules of ``emboux_mail`` (event types, the
address guard)."""

import socket
from unittest.mock import patch

from .common import EmbouxApiCase

WEBHOOK_KEYS = {"id", "url", "events", "partner_ref", "active", "disabled_reason"}
URL = "https://hooks.example.com/emboux"
ALLOW_PRIVATE = "emboux_mail.webhook_allow_private"
# the address guard resolves the host: ours is a public address, offline
HOSTS = {"hooks.example.com": "93.184.215.14"}
getaddrinfo = socket.getaddrinfo


def _resolve(host, *args, **kwargs):
    return getaddrinfo(HOSTS.get(host, host), *args, **kwargs)


class TestWebhooks(EmbouxApiCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.startClassPatcher(patch.object(socket, "getaddrinfo", _resolve))
        cls.env["ir.config_parameter"].set_param(ALLOW_PRIVATE, "0")

    def _create(self, **values):
        body = {"url": URL, "events": ["mailbox.created"], **values}
        return self.master("POST", "/webhooks/", json=body)

    def _created(self, **values):
        return self.assertAnswer(self._create(**values), 201, WEBHOOK_KEYS | {"secret"})

    def _record(self, webhook):
        return self.env["emboux.mail.webhook"].browse(webhook["id"])

    def test_master_only(self):
        webhook = self._created()
        path = f"/webhooks/{webhook['id']}"
        for method, route, body in (
            ("POST", "/webhooks/", {"url": URL, "events": ["mailbox.created"]}),
            ("GET", "/webhooks/", None),
            ("GET", path, None),
            ("PUT", path, {"active": False}),
            ("DELETE", path, None),
        ):
            with self.subTest(method=method, route=route):
                response = self.as_a(method, route, json=body)
                self.assertDetail(response, 403, "Master token required")
        self.assertTrue(self._record(webhook).active)

    def test_create_shows_the_secret_once(self):
        webhook = self._created(
            events=["mailbox.created", "domain.created"], partner_ref="partner_42"
        )
        secret = webhook.pop("secret")
        self.assertTrue(secret.startswith("whsec_"))
        self.assertEqual(webhook["url"], URL)
        self.assertEqual(set(webhook["events"]), {"mailbox.created", "domain.created"})
        self.assertEqual(
            (webhook["partner_ref"], webhook["active"], webhook["disabled_reason"]),
            ("partner_42", True, None),
        )
        record = self._record(webhook)
        self.assertEqual(record.partner_id, self.tenant_a)
        self.assertEqual(record.sudo().secret, secret)
        self.assertTrue(record.secret_shown, "the UI must not show it again")
        # with the database's master key too; then never again
        response = self.api("GET", f"/webhooks/{webhook['id']}", token=self.DB_MASTER)
        self.assertEqual(self.assertAnswer(response, 200, WEBHOOK_KEYS), webhook)
        self.assertNotIn(secret, response.text)
        response = self.master("GET", "/webhooks/")
        self.assertIn(webhook, self.assertList(response, WEBHOOK_KEYS))
        self.assertNotIn(secret, response.text)

    def test_list_paging(self):
        created = [self._created()["id"] for _i in range(3)]
        Webhook = self.env["emboux.mail.webhook"].with_context(active_test=False)
        total = Webhook.search_count([])
        # newest first, disabled ones included
        self.master("PUT", f"/webhooks/{created[0]}", json={"active": False})
        items = self.assertList(
            self.master("GET", "/webhooks/?limit=2"), WEBHOOK_KEYS, total
        )
        self.assertEqual([item["id"] for item in items], created[:0:-1])
        items = self.assertList(
            self.master("GET", "/webhooks/?limit=1&offset=2"), WEBHOOK_KEYS, total
        )
        self.assertEqual(items[0]["id"], created[0])
        self.assertFalse(items[0]["active"])
        self.assertEqual(
            self.assertList(self.master("GET", "/webhooks/?limit=0"), WEBHOOK_KEYS),
            [],
        )
        self.assertInvalid(
            self.master("GET", "/webhooks/?limit=-1"), ["query", "limit"]
        )

    def test_get_unknown(self):
        webhook = self._created()
        for webhook_id in (webhook["id"] + 1000, "abc", "-1", "99999999999999"):
            with self.subTest(webhook_id=webhook_id):
                response = self.master("GET", f"/webhooks/{webhook_id}")
                self.assertDetail(response, 404, "Webhook not found")

    def test_update(self):
        webhook = self._created()
        path = f"/webhooks/{webhook['id']}"
        body = {"url": URL + "/v2", "events": ["alias.created", "alias.deleted"]}
        updated = self.assertAnswer(
            self.master("PUT", path, json=body), 200, WEBHOOK_KEYS
        )
        self.assertEqual(
            (updated["url"], set(updated["events"])),
            (URL + "/v2", {"alias.created", "alias.deleted"}),
        )
        self.assertEqual(
            self.assertAnswer(self.master("GET", path), 200, WEBHOOK_KEYS), updated
        )
        response = self.master("PUT", path, json={"active": False})
        self.assertFalse(self.assertAnswer(response, 200, WEBHOOK_KEYS)["active"])
        # disabled by the delivery job: enabling forgets why
        record = self._record(webhook)
        record.write({"active": True})
        record._emboux_disable("the receiver answered 410 Gone")
        disabled = self.assertAnswer(self.master("GET", path), 200, WEBHOOK_KEYS)
        self.assertEqual(
            (disabled["active"], disabled["disabled_reason"]),
            (False, "the receiver answered 410 Gone"),
        )
        enabled = self.master("PUT", path, json={"active": True})
        enabled = self.assertAnswer(enabled, 200, WEBHOOK_KEYS)
        self.assertEqual((enabled["active"], enabled["disabled_reason"]), (True, None))
        self.assertEqual(enabled["url"], URL + "/v2")
        self.assertDetail(
            self.master("PUT", "/webhooks/0", json={"active": True}),
            404,
            "Webhook not found",
        )

    def test_rotate_secret(self):
        webhook = self._created()
        path = f"/webhooks/{webhook['id']}"
        response = self.master("PUT", path, json={"rotate_secret": True})
        rotated = self.assertAnswer(response, 200, WEBHOOK_KEYS | {"secret"})
        self.assertTrue(rotated["secret"].startswith("whsec_"))
        self.assertNotEqual(rotated["secret"], webhook["secret"])
        # the previous secret still signs while receivers change theirs
        self.assertEqual(
            self._record(webhook)._emboux_signing_secrets(),
            [rotated["secret"], webhook["secret"]],
        )
        response = self.master("GET", path)
        self.assertAnswer(response, 200, WEBHOOK_KEYS)
        self.assertNotIn(rotated["secret"], response.text)
        response = self.master("PUT", path, json={"rotate_secret": False})
        self.assertAnswer(response, 200, WEBHOOK_KEYS)

    def test_delete(self):
        webhook = self._created()
        path = f"/webhooks/{webhook['id']}"
        self.assertEmpty204(self.master("DELETE", path))
        self.assertFalse(self._record(webhook).exists())
        self.assertDetail(self.master("GET", path), 404, "Webhook not found")
        self.assertDetail(self.master("DELETE", path), 404, "Webhook not found")

    def test_validation(self):
        response = self.master("POST", "/webhooks/", json={})
        self.assertInvalid(response, ["body", "url"], "missing")
        self.assertInvalid(response, ["body", "events"], "missing")
        for events in ("mailbox.created", {"mailbox.created": True}, None):
            with self.subTest(events=events):
                self.assertInvalid(
                    self._create(events=events), ["body", "events"], "list_type"
                )
        self.assertInvalid(
            self._create(events=["mailbox.created", 42]),
            ["body", "events", 1],
            "string_type",
        )
        self.assertInvalid(self._create(events=["a\x00b"]), ["body", "events", 0])
        error = self.assertInvalid(
            self._create(events=["mailbox.created", "mailbox.exploded"]),
            ["body", "events"],
            "value_error",
        )
        self.assertEqual(error["msg"], "Unknown event type: mailbox.exploded")
        error = self.assertInvalid(self._create(events=[]), ["body", "events"])
        self.assertEqual(error["msg"], "At least one event type is required")
        error = self.assertInvalid(
            self._create(url="ftp://hooks.example.com/"), ["body", "url"]
        )
        self.assertEqual(error["msg"], "Webhook URL refused: not an http(s) URL")
        self.assertInvalid(self._create(url=""), ["body", "url"], "string_too_short")
        webhook = self._created()
        response = self.master(
            "PUT", f"/webhooks/{webhook['id']}", json={"events": ["nope"]}
        )
        self.assertInvalid(response, ["body", "events"], "value_error")
        self.assertEqual(
            self._record(webhook).topic_ids.mapped("code"), ["mailbox.created"]
        )

    def test_private_address(self):
        """The address guard's reason is the answer; the setting lets an
        operator point endpoints at its own network."""
        loopback = "http://127.0.0.1:8080/hook"
        error = self.assertInvalid(self._create(url=loopback), ["body", "url"])
        self.assertEqual(
            error["msg"], "Webhook URL refused: 127.0.0.1 is a non-public address"
        )
        webhook = self._created()
        response = self.master(
            "PUT", f"/webhooks/{webhook['id']}", json={"url": loopback}
        )
        self.assertInvalid(response, ["body", "url"])
        self.assertEqual(self._record(webhook).url, URL)
        self.env["ir.config_parameter"].set_param(ALLOW_PRIVATE, "1")
        self.assertEqual(self._created(url=loopback)["url"], loopback)

    def test_partner_ref(self):
        self.assertDetail(
            self._create(partner_ref="partner_unknown"), 404, "Customer not found"
        )
        self.assertFalse(
            self.env["res.partner"].search(
                [("emboux_partner_ref", "=", "partner_unknown")]
            ),
            "no customer made up for a webhook",
        )
        for body in ({"partner_ref": None}, {}):
            with self.subTest(body=body):
                webhook = self._created(**body)
                self.assertIsNone(webhook["partner_ref"])
                self.assertFalse(self._record(webhook).partner_id)
        webhook = self._created(partner_ref="partner_17")
        self.assertEqual(self._record(webhook).partner_id, self.tenant_b)

    def test_openapi(self):
        document = self.api("GET", "/openapi.json").json()
        paths = document["paths"]
        for path, methods in (
            ("/webhooks/", ("post", "get")),
            ("/webhooks/{webhook_id}", ("get", "put", "delete")),
        ):
            for method in methods:
                with self.subTest(method=method, path=path):
                    self.assertEqual(paths[path][method]["x-required-role"], "master")
        schema = document["components"]["schemas"]["Webhook"]["properties"]
        self.assertEqual(set(schema), WEBHOOK_KEYS | {"secret"})
        self.assertEqual(
            schema["events"], {"type": "array", "items": {"type": "string"}}
        )
        codes = self.env["emboux.mail.webhook.topic"].search([]).mapped("code")
        self.assertIn("mailbox.created", codes)
        for path, method, required in (
            ("/webhooks/", "post", ["url", "events"]),
            ("/webhooks/{webhook_id}", "put", []),
        ):
            with self.subTest(method=method):
                body = paths[path][method]["requestBody"]["content"]["application/json"]
                self.assertEqual(body["schema"]["required"], required)
                events = body["schema"]["properties"]["events"]
                self.assertEqual(events["type"], "array")
                self.assertEqual(events["items"], {"type": "string", "enum": codes})
        listed = paths["/webhooks/"]["get"]["responses"]["200"]
        self.assertIn("X-Total-Count", listed["headers"])
