"""Bad input never answers 500 (§B.2.3): FastAPI-shaped 422 at the field,
413 over 1 MiB, and what FastAPI tolerates (unknown fields) still works.
``api()`` itself fails any 5xx."""

from datetime import datetime
from urllib.parse import quote

from odoo.addons.emboux_mail.services.stamps import stamp

from ..services.validation import STAMP_PATTERN
from .common import DOMAIN_KEYS, JSON, EmbouxApiCase

SQL = "x'; DROP TABLE emboux_mail_domain; --"


class TestBadInput(EmbouxApiCase):
    def _raw(self, method, path, data, headers=None, token=None):
        headers = JSON if headers is None else headers
        return self.api(method, path, token or self.TOKEN_A, data=data, headers=headers)

    def test_not_a_json_object(self):
        for data in (
            '{"name": ',
            "{'name': 'x.example'}",
            "[]",
            '"x.example"',
            "null",
            "42",
        ):
            with self.subTest(data=data):
                self.assertInvalid(self._raw("POST", "/domains/", data), ["body"])
        self.assertInvalid(self._raw("POST", "/domains/", "[]"), ["body"], "dict_type")
        self.assertInvalid(
            self._raw("POST", "/domains/", "{"), ["body"], "json_invalid"
        )
        self.assertInvalid(self._raw("POST", "/domains/", b"\xff\xfe{}"), ["body"])
        self.assertInvalid(self._raw("POST", "/domains/", "[" * 100000), ["body"])

    def test_empty_body(self):
        for headers in (JSON, {}):
            with self.subTest(headers=headers):
                response = self._raw("POST", "/domains/", None, headers)
                self.assertInvalid(response, ["body"], "missing")
        self.assertInvalid(self._raw("PUT", "/users/x@y.example", ""), ["body"])

    def test_wrong_types(self):
        self.create_domain("types.example")
        self.create_mailbox("box@types.example")
        quota = "/users/box@types.example/quota"
        for method, path, body, loc, kind in (
            ("POST", "/domains/", {"name": 123}, "name", "string_type"),
            ("POST", "/domains/", {"name": None}, "name", "string_type"),
            ("PUT", quota, {"quota_mb": "lots"}, "quota_mb", "int_type"),
            ("PUT", quota, {"quota_mb": True}, "quota_mb", "int_type"),
            ("PUT", quota, {"quota_mb": 1.5}, "quota_mb", "int_type"),
            ("PUT", quota, {"quota_mb": -1}, "quota_mb", "greater_than_equal"),
            ("PUT", quota, {"quota_mb": 2**40}, "quota_mb", None),
            ("POST", "/users/", {"domain_name": ["x"]}, "domain_name", "string_type"),
            ("PUT", "/users/box@types.example", {"password": 1}, "password", None),
        ):
            with self.subTest(body=body):
                self.assertInvalid(
                    self.as_a(method, path, json=body), ["body", loc], kind
                )
        for body, loc in (
            ({"token": "t" * 20, "partner_ref": "p", "active": "yes"}, "active"),
            (
                {"token": "t" * 20, "partner_ref": "p", "domains_allowed": True},
                "domains_allowed",
            ),
            (
                {"token": "t" * 20, "partner_ref": "p", "expires_at": "soon"},
                "expires_at",
            ),
            ({"token": "short", "partner_ref": "p"}, "token"),
            ({"token": "t" * 20, "partner_ref": 42}, "partner_ref"),
        ):
            with self.subTest(body=body):
                response = self.master("POST", "/api-keys/", json=body)
                self.assertInvalid(response, ["body", loc])
        self.assertEqual(self.as_a("GET", quota).json()["quota_mb"], 2048)

    def test_missing_fields(self):
        response = self.as_a("POST", "/users/", json={})
        for field in ("domain_name", "email", "password"):
            self.assertInvalid(response, ["body", field], "missing")
        response = self.master("POST", "/api-keys/", json={"partner_ref": "p"})
        self.assertInvalid(response, ["body", "token"], "missing")
        self.assertInvalid(
            self.as_a("POST", "/aliases/", json={"source": "a@b.example"}),
            ["body", "destination"],
            "missing",
        )

    def test_unknown_fields_ignored(self):
        body = {"name": "extra.example", "id": 999999, "suspended": True, "x": [1]}
        domain = self.assertAnswer(
            self.as_a("POST", "/domains/", json=body), 201, DOMAIN_KEYS
        )
        self.assertNotEqual(domain["id"], 999999)
        self.assertFalse(self.env["emboux.mail.domain"].browse(domain["id"]).suspended)

    def test_body_too_large(self):
        data = '{"name": "big.example", "pad": "' + "x" * (1024 * 1024) + '"}'
        response = self._raw("POST", "/domains/", data)
        self.assertEqual(response.status_code, 413)
        self.assertEqual(set(response.json()), {"detail"})
        self.assertIsInstance(response.json()["detail"], str)
        self.assertFalse(
            self.env["emboux.mail.domain"].search([("name", "=", "big.example")])
        )
        # just under the limit is accepted
        data = '{"name": "big.example", "pad": "' + "x" * (1000 * 1000) + '"}'
        self.assertEqual(self._raw("POST", "/domains/", data).status_code, 201)

    def test_form_encoded_json(self):
        """``curl -d '{...}'`` without a JSON content type still works."""
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        response = self._raw("POST", "/domains/", '{"name": "form.example"}', form)
        self.assertAnswer(response, 201, DOMAIN_KEYS)
        response = self._raw("POST", "/domains/", '{"name": "plain.example"}', {})
        self.assertAnswer(response, 201, DOMAIN_KEYS)
        self.create_mailbox("box@form.example")
        response = self._raw(
            "PUT", "/users/box@form.example/quota", '{"quota_mb": 10}', form
        )
        self.assertEqual(
            response.json(),
            {"email": "box@form.example", "quota_mb": 10, "used_mb": 0.0},
        )

    def test_idn_and_punycode_are_one_domain(self):
        domain = self.create_domain("Bücher.Example")
        self.assertEqual(domain["name"], "xn--bcher-kva.example")
        response = self.as_a(
            "POST", "/domains/", json={"name": "xn--bcher-kva.example"}
        )
        self.assertDetail(response, 400, "Domain already exists")
        response = self.as_a("PUT", "/domains/BÜCHER.example/suspend")
        self.assertEqual(response.json()["name"], "xn--bcher-kva.example")
        self.assertEmpty204(self.as_a("DELETE", "/domains/bücher.example"))

    def test_sql_looking_strings(self):
        self.assertInvalid(
            self.as_a("POST", "/domains/", json={"name": SQL}), ["body", "name"]
        )
        self.assertDetail(
            self.as_a("DELETE", f"/domains/{SQL}"), 404, "Domain not found"
        )
        self.assertDetail(
            self.as_a("DELETE", f"/users/{SQL}"), 404, "Mailbox not found"
        )
        self.assertDetail(
            self.as_a("DELETE", f"/aliases/{SQL}"), 404, "Alias not found"
        )
        self.assertInvalid(
            self.as_a("GET", "/users/?domain_id=1;DROP"), ["query", "domain_id"]
        )
        token = "emb_sql_partner_ref_key_01"
        self.secrets.add(token)
        response = self.master(
            "POST", "/api-keys/", json={"token": token, "partner_ref": SQL}
        )
        self.assertEqual(
            (response.status_code, response.json()["partner_ref"]), (201, SQL)
        )
        self.create_domain("still.example")
        self.assertEqual(len(self.as_a("GET", "/domains/").json()), 1)

    def test_invalid_names(self):
        self.create_domain("valid.example")
        for name in (
            "localhost",
            "-bad-.example",
            "a..b.example",
            "a b.example",
            "x" * 64 + ".com",
            "1.2.3.4",
        ):
            with self.subTest(name=name):
                response = self.as_a("POST", "/domains/", json={"name": name})
                self.assertInvalid(response, ["body", "name"])
        mailbox = {"domain_name": "valid.example", "password": "pw"}
        for email in (
            "not-an-email",
            "a b@valid.example",
            "@valid.example",
            "x@bad_domain",
        ):
            with self.subTest(email=email):
                response = self.as_a(
                    "POST", "/users/", json={**mailbox, "email": email}
                )
                self.assertInvalid(response, ["body", "email"])
        response = self.as_a(
            "POST", "/users/", json={**mailbox, "domain_name": "x", "email": "a@x"}
        )
        self.assertInvalid(response, ["body", "domain_name"])
        alias = {"domain_name": "valid.example", "source": "a@valid.example"}
        for body, loc in (
            ({**alias, "destination": "nope"}, "destination"),
            (
                {**alias, "source": "a@@valid.example", "destination": "b@c.example"},
                "source",
            ),
            ({**alias, "source": "@", "destination": "b@c.example"}, "source"),
        ):
            with self.subTest(body=body):
                self.assertInvalid(
                    self.as_a("POST", "/aliases/", json=body), ["body", loc]
                )
        response = self.master(
            "PUT", "/domains/valid.example/parent", json={"parent_domain": "bad"}
        )
        self.assertInvalid(response, ["body", "parent_domain"])

    def test_invalid_query(self):
        for path, name in (
            ("/domains/?limit=-1", "limit"),
            ("/domains/?limit=abc", "limit"),
            ("/domains/?offset=-3", "offset"),
            ("/domains/?limit=99999999999999999999", "limit"),
            ("/users/?domain_id=x", "domain_id"),
            ("/aliases/?domain_id=1.5", "domain_id"),
            (f"/api-keys/{self.TOKEN_A}/usage?since=yesterday", "since"),
        ):
            with self.subTest(path=path):
                token = self.MASTER if "api-keys" in path else self.TOKEN_A
                response = self.api("GET", path, token)
                self.assertInvalid(response, ["query", name])

    def test_nul_characters(self):
        """PostgreSQL cannot store NUL: refused, never a server error."""
        self.create_domain("nul.example")
        body = {"domain_name": "nul.example", "email": "a@nul.example"}
        response = self.as_a("POST", "/users/", json={**body, "password": "p\x00w"})
        self.assertInvalid(response, ["body", "password"])
        response = self.as_a("POST", "/domains/", json={"name": "a\x00b.example"})
        self.assertInvalid(response, ["body", "name"])
        response = self.master(
            "POST", "/api-keys/", json={"token": "t" * 20, "partner_ref": "p\x00"}
        )
        self.assertInvalid(response, ["body", "partner_ref"])
        response = self.as_a("PUT", "/users/a%00b@nul.example", json={"password": "pw"})
        self.assertDetail(response, 404, "Mailbox not found")
        response = self.as_a("DELETE", "/aliases/a%00b@nul.example")
        self.assertDetail(response, 404, "Alias not found")

    def test_integral_numbers(self):
        """An integer may be written ``10.0``: JSON Schema's integers, which
        the OpenAPI document promises, include it; ``10.5`` is none."""
        self.create_domain("float.example")
        self.create_mailbox("box@float.example")
        path = "/users/box@float.example/quota"
        response = self.as_a("PUT", path, json={"quota_mb": 10.0})
        self.assertEqual((response.status_code, response.json()["quota_mb"]), (200, 10))
        self.assertInvalid(
            self.as_a("PUT", path, json={"quota_mb": 10.5}), ["body", "quota_mb"]
        )
        response = self.as_a("PUT", path, json={"quota_mb": 2.0**31})
        self.assertInvalid(response, ["body", "quota_mb"], "less_than_equal")

    def test_datetimes_at_the_ends_of_the_calendar(self):
        """The last instant of the calendar west of UTC is past what Python
        represents: the latest datetime, never a server error; a year
        before 1000 is refused (answers spell the year in four digits)."""
        token = "emb_calendar_end_key_0001"
        self.secrets.add(token)
        body = {
            "token": token,
            "partner_ref": "partner_42",
            "expires_at": "9999-12-31T23:00:00-05:00",
        }
        response = self.master("POST", "/api-keys/", json=body)
        self.assertEqual(response.status_code, 201, response.text)
        self.assertEqual(response.json()["expires_at"], "9999-12-31T23:59:59")
        for value in ("0191-08-30T14:42:22Z", "0001-01-01T00:00:00+01:00"):
            with self.subTest(value=value):
                response = self.master(
                    "PUT", f"/api-keys/{token}", json={"expires_at": value}
                )
                self.assertInvalid(response, ["body", "expires_at"], "datetime_parsing")
                response = self.master(
                    "GET", f"/api-keys/{token}/usage?since={quote(value)}"
                )
                self.assertInvalid(response, ["query", "since"], "datetime_parsing")

    def test_stamps_spell_four_digit_years(self):
        """What the API answers for a date keeps the shape it publishes,
        whatever the year (strftime would drop the zeros before 1000)."""
        for value, expected in (
            (datetime(191, 8, 30, 14, 42, 22), "0191-08-30T14:42:22"),
            (datetime(2026, 1, 2, 3, 4, 5, 678), "2026-01-02T03:04:05"),
        ):
            with self.subTest(value=value):
                self.assertEqual(stamp(value), expected)
                self.assertRegex(stamp(value), f"^{STAMP_PATTERN}$")
        self.assertIsNone(stamp(False))

    def test_options_runs_nothing(self):
        """OPTIONS on an API path tells what it allows: Odoo would run the
        route itself (its routes all take OPTIONS, for CORS)."""
        webhooks = (
            self.env["emboux.mail.webhook"].sudo().with_context(active_test=False)
        )
        existing = webhooks.search_count([])
        for token, path, body in (
            (self.TOKEN_A, "/domains/", {"name": "options.example"}),
            (self.MASTER, "/webhooks/", {"url": "http://a.example/", "events": []}),
        ):
            with self.subTest(path=path):
                response = self.api("OPTIONS", path, token, json=body)
                self.assertEqual(response.status_code, 204)
                self.assertEqual(response.headers["Allow"], "GET, HEAD, OPTIONS, POST")
        self.assertFalse(
            self.env["emboux.mail.domain"].search([("name", "=", "options.example")])
        )
        self.assertEqual(webhooks.search_count([]), existing)

    def test_webhook_url_shape(self):
        """A URL that is not http(s) to a host is refused at its field before
        the address guard reads it (a bracket left open made it fail)."""
        body = {"events": ["mailbox.created"]}
        for url in ("http://[::1", "http://[zz]/", "https:///hook", "http://a b/"):
            with self.subTest(url=url):
                response = self.master("POST", "/webhooks/", json={**body, "url": url})
                error = self.assertInvalid(response, ["body", "url"])
                self.assertEqual(
                    error["msg"], "Webhook URL refused: not an http(s) URL"
                )
