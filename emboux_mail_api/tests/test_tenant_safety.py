"""Tenant safety on the REST API (§B.3): ownership proof, names no customer
may claim, suspension reasons, storage ceilings, the password policy, the
API's own user, the authentication throttle, body limits and the log."""

from io import BytesIO
from types import SimpleNamespace

from odoo.addons.emboux_mail.services import dns_checker

from ..models import ir_http
from .common import EmbouxApiCase

VERIFY_KEYS = {"name", "verified", "verification_token", "dns_records", "message"}


class TestTenantSafety(EmbouxApiCase):
    def domain(self, name):
        return self.env["emboux.mail.domain"].search([("name", "=", name)])

    def zone_with_proof(self, name):
        token = self.domain(name).verification_token
        value = dns_checker.VERIFICATION_PREFIX + token
        return {(name, "TXT"): [f'"{value}"']}

    # -- ownership proof ---------------------------------------------------------
    def test_customer_domain_waits_for_its_proof(self):
        self.create_domain("gmail.com")
        item = self.as_a("GET", "/domains/").json()[0]
        self.assertEqual(
            (item["name"], item["verified"], item["suspended"]),
            ("gmail.com", False, False),
        )
        with self.fake_dns({}):
            response = self.as_a("POST", "/domains/gmail.com/verify")
        answer = self.assertAnswer(response, 200, VERIFY_KEYS)
        token = self.domain("gmail.com").verification_token
        self.assertEqual(
            answer,
            {
                "name": "gmail.com",
                "verified": False,
                "verification_token": token,
                "dns_records": [
                    {
                        "record_type": "TXT",
                        "name": "gmail.com",
                        "value": f"emboux-verification={token}",
                    }
                ],
                "message": "TXT record not found yet: publish it and try again",
            },
        )
        # another tenant cannot even see it
        self.assertDetail(
            self.as_b("POST", "/domains/gmail.com/verify"), 404, "Domain not found"
        )
        with self.fake_dns(self.zone_with_proof("gmail.com")):
            response = self.as_a("POST", "/domains/gmail.com/verify")
        answer = self.assertAnswer(response, 200, VERIFY_KEYS)
        self.assertEqual(
            (answer["verified"], answer["dns_records"], answer["message"]),
            (True, [], "Domain verified"),
        )
        self.assertTrue(self.as_a("GET", "/domains/").json()[0]["verified"])

    def test_master_vouches_or_asks_for_proof(self):
        self.create_domain("placed.example", self.MASTER, "partner_42")
        response = self.master(
            "POST",
            "/domains/",
            json={
                "name": "pending.example",
                "partner_ref": "partner_42",
                "verified": False,
            },
        )
        self.assertEqual(response.status_code, 201, response.text)
        states = {
            item["name"]: item["verified"]
            for item in self.as_a("GET", "/domains/").json()
        }
        self.assertEqual(states, {"placed.example": True, "pending.example": False})
        # a customer's "verified" is not the customer's to give
        response = self.as_b(
            "POST", "/domains/", json={"name": "claim.example", "verified": True}
        )
        self.assertEqual(response.status_code, 201, response.text)
        self.assertFalse(self.domain("claim.example").verified)

    # -- names never available ---------------------------------------------------
    def test_public_suffixes_and_other_tenants_names(self):
        for name in ("co.uk", "github.io", "blogspot.com"):
            with self.subTest(name=name):
                self.assertDetail(
                    self.as_a("POST", "/domains/", json={"name": name}),
                    400,
                    "Domain is a public suffix",
                )
        self.create_domain("bcompany.example", self.TOKEN_B)
        for name in ("bcompany.example", "anything.bcompany.example"):
            with self.subTest(name=name):
                self.assertDetail(
                    self.as_a("POST", "/domains/", json={"name": name}),
                    400,
                    "Domain already exists",
                )
        self.assertEqual(self.as_a("GET", "/domains/").json(), [])
        # the master places such a name deliberately
        self.create_domain("mx.bcompany.example", self.MASTER, "partner_42")

    # -- operators outrank customers ---------------------------------------------
    def test_suspension_reasons(self):
        self.create_domain("mycompany.com")
        self.master("PUT", "/domains/mycompany.com/suspend")
        self.assertDetail(
            self.as_a("PUT", "/domains/mycompany.com/activate"),
            403,
            "Domain suspended by the operator",
        )
        # the customer's own suspend keeps the operator's reason
        self.assertEqual(
            self.as_a("PUT", "/domains/mycompany.com/suspend").status_code, 200
        )
        self.assertEqual(
            self.as_a("GET", "/domains/").json()[0]["suspension_reason"], "operator"
        )
        self.domain("mycompany.com").suspension_reason = "billing"
        self.assertDetail(
            self.as_a("PUT", "/domains/mycompany.com/activate"),
            403,
            "Domain suspended for billing",
        )
        response = self.master("PUT", "/domains/mycompany.com/activate")
        self.assertEqual(response.json()["suspended"], False)
        # a customer lifts what it suspended itself
        self.as_a("PUT", "/domains/mycompany.com/suspend")
        self.assertEqual(
            self.as_a("GET", "/domains/").json()[0]["suspension_reason"], "customer"
        )
        response = self.as_a("PUT", "/domains/mycompany.com/activate")
        self.assertEqual(
            response.json(),
            {
                "name": "mycompany.com",
                "suspended": False,
                "message": "Domain activated",
            },
        )

    def test_suspended_domain_refuses_additions_not_deletes(self):
        self.create_domain("mycompany.com")
        self.create_mailbox("hello@mycompany.com")
        self.create_alias("sales@mycompany.com", "hello@mycompany.com")
        self.master("PUT", "/domains/mycompany.com/suspend")
        for method, path, body in (
            (
                "POST",
                "/users/",
                {
                    "domain_name": "mycompany.com",
                    "email": "new@mycompany.com",
                    "password": "Secret-pass-2",
                },
            ),
            (
                "POST",
                "/aliases/",
                {
                    "domain_name": "mycompany.com",
                    "source": "new@mycompany.com",
                    "destination": "hello@mycompany.com",
                },
            ),
            ("PUT", "/users/hello@mycompany.com", {"password": "Secret-pass-3"}),
        ):
            with self.subTest(path=path):
                self.secrets.add(body.get("password", "-"))
                response = self.as_a(method, path, json=body)
                self.assertDetail(response, 403, "Domain suspended")
        self.assertEmpty204(self.as_a("DELETE", "/aliases/sales@mycompany.com"))
        self.assertEmpty204(self.as_a("DELETE", "/users/hello@mycompany.com"))

    def test_storage_ceiling(self):
        self.plan_a.max_quota_mb = 4096
        self.create_domain("mycompany.com")
        self.create_mailbox("hello@mycompany.com")
        path = "/users/hello@mycompany.com/quota"
        for quota in (0, 4097, 2147483647):
            with self.subTest(quota=quota):
                self.assertDetail(
                    self.as_a("PUT", path, json={"quota_mb": quota}),
                    403,
                    "Storage quota exceeds plan maximum (4096 MB)",
                )
        response = self.as_a("PUT", path, json={"quota_mb": 4096})
        self.assertEqual(response.json()["quota_mb"], 4096)
        response = self.master("PUT", path, json={"quota_mb": 0})
        self.assertEqual(response.json()["quota_mb"], 0)

    # -- password policy ---------------------------------------------------------
    def test_password_policy_answers_422_at_the_password(self):
        self.create_domain("mycompany.com")
        self.create_mailbox("hello@mycompany.com")
        for password, message in (
            ("x" * 5000, "at most 1024 bytes"),
            ("\ud800" * 12, "not valid text"),
            ("a", "at least 10 characters"),
            ("tab\there-123", "control characters"),
        ):
            with self.subTest(message=message):
                response = self.as_a(
                    "PUT", "/users/hello@mycompany.com", json={"password": password}
                )
                error = self.assertInvalid(response, ["body", "password"])
                self.assertIn(message, error["msg"])
                if len(password) > 3:
                    self.assertNotIn(password, response.text)
        body = {
            "domain_name": "mycompany.com",
            "email": "new@mycompany.com",
            "password": "short",
        }
        self.assertInvalid(
            self.as_a("POST", "/users/", json=body), ["body", "password"]
        )
        self.assertEqual(len(self.as_a("GET", "/users/").json()), 1)

    # -- the API's own user ------------------------------------------------------
    def test_api_runs_as_its_own_user(self):
        self.create_domain("mycompany.com")
        api_user = self.env.ref("emboux_mail_api.user_emboux_api")
        self.assertFalse(api_user._is_superuser() or api_user._is_internal())
        self.assertEqual(self.domain("mycompany.com").create_uid, api_user)

    # -- limits ------------------------------------------------------------------
    def test_throttle_refuses_guesses_not_valid_keys(self):
        set_param = self.env["ir.config_parameter"].set_param
        set_param("emboux_mail_api.auth_failures_max", "3")
        set_param("emboux_mail_api.auth_cooldown_seconds", "600")
        wrong = "Bearer emb_wrong_guess_00000000"
        for _attempt in range(3):
            response = self.api("GET", "/domains/", headers={"Authorization": wrong})
            self.assertDetail(response, 403, "Invalid API key")
        response = self.api("GET", "/domains/", headers={"Authorization": wrong})
        self.assertDetail(response, 429, "Too many failed authentication attempts")
        self.assertTrue(0 < int(response.headers["Retry-After"]) <= 600)
        # a valid key from the same address still works
        self.assertEqual(self.as_a("GET", "/domains/").status_code, 200)
        self.assertEqual(self.master("GET", "/domains/").status_code, 200)
        failures = self.env["emboux.mail.api.auth.failure"].search([])
        self.assertEqual(failures.mapped("failures"), [3])

    def test_chunked_body_over_1_mib_is_refused_unread(self):
        def chunks():
            for _index in range(20):
                yield b"x" * 65536  # 1.25 MiB in all, no Content-Length

        response = self.api(
            "POST", "/domains/", token=self.TOKEN_A, data=chunks(), headers={}
        )
        self.assertDetail(response, 413, "Request body too large")
        self.assertEqual(self.as_a("GET", "/domains/").json(), [])

    def test_a_body_is_never_read_past_the_limit(self):
        """An endless chunked body is cut after the limit, not read whole."""
        sizes = []

        def endless(size):
            sizes.append(size)
            return b"x" * size

        chunked = SimpleNamespace(content_length=None, stream=SimpleNamespace())
        chunked.stream.read = endless
        self.assertIsNone(ir_http.read_body(chunked))
        self.assertEqual(sum(sizes), ir_http.MAX_BODY + 1)

    def test_a_replayed_request_reads_its_body_again(self):
        """Odoo replays a request after a serialization failure: its body,
        whose stream was read the first time, must still be there."""
        body = b'{"name": "replayed.example"}'
        request = SimpleNamespace(content_length=len(body), stream=BytesIO(body))
        self.assertEqual(ir_http.read_body(request), body)
        self.assertEqual(ir_http.read_body(request), body)

    # -- security log ------------------------------------------------------------
    def test_security_log_names_the_key_and_the_address(self):
        self.create_domain("mycompany.com")
        self.as_a("PUT", "/domains/mycompany.com/suspend")
        self.master("PUT", "/domains/mycompany.com/activate")
        logs = self.env["emboux.mail.security.log"].search(
            [("name", "=", "mycompany.com")], order="id"
        )
        self.assertEqual(
            [(log.event, log.detail, log.api_key_id) for log in logs],
            [
                ("domain_suspended", "Customer", self.key_a),
                ("domain_activated", "Operator", self.env["emboux.mail.api.key"]),
            ],
        )
        self.assertEqual(set(logs.mapped("channel")), {"api"})
        self.assertEqual(set(logs.mapped("address")), {"127.0.0.1"})
        self.assertEqual(logs.partner_id, self.tenant_a)

    def test_key_lifecycle_is_logged(self):
        token = "emb_logged_key_000000000001"
        self.secrets.add(token)
        body = {"token": token, "partner_ref": "partner_42"}
        self.assertEqual(self.master("POST", "/api-keys/", json=body).status_code, 201)
        for active in (False, True):
            self.master("PUT", f"/api-keys/{token}", json={"active": active})
        self.assertEmpty204(self.master("DELETE", f"/api-keys/{token}"))
        logs = self.env["emboux.mail.security.log"].search(
            [("res_model", "=", "emboux.mail.api.key"), ("channel", "=", "api")],
            order="id",
        )
        self.assertEqual(
            logs.mapped("event"),
            ["key_created", "key_revoked", "key_restored", "key_deleted"],
        )
        self.assertEqual(logs.partner_id, self.tenant_a)
        self.assertEqual(set(logs.mapped("address")), {"127.0.0.1"})
        self.assertNotIn(token, " ".join(logs.mapped("name")))
