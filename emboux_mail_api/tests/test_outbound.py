"""Outbound mail and transfer (§A.3.5, §A.3.7, §B.3.18): sending limits,
the policy service's counter, and the monthly transfer ceiling."""

from .common import EmbouxApiCase

OUTBOUND_KEYS = {
    "name",
    "outbound_tier",
    "outbound_status",
    "outbound_daily_limit",
    "outbound_monthly_limit",
    "outbound_sent_today",
    "outbound_sent_month",
    "outbound_enforcement",
    "bounce_count",
    "complaint_count",
    "bounce_rate",
    "complaint_rate",
    "ses_verified",
}
INCREMENT_KEYS = {
    "name",
    "outbound_sent_today",
    "outbound_sent_month",
    "allowed",
    "reason",
}
TRANSFER_KEYS = {"name", "transfer_monthly_mb", "transfer_used_mb"}
OUTBOUND = "/domains/{}/outbound"
INCREMENT = "/domains/{}/outbound/increment"
TRANSFER = "/domains/{}/transfer"


class TestOutbound(EmbouxApiCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.plan_a.write(
            {
                "outbound_daily_limit": 100,
                "outbound_monthly_limit": 1000,
                "max_outbound_daily_limit": 400,
                "max_outbound_monthly_limit": 5000,
                "transfer_monthly_mb": 2048,
            }
        )

    def setUp(self):
        super().setUp()
        # one domain of each tenant, placed (and so verified) by the master
        self.create_domain("out.example", token=self.MASTER, partner_ref="partner_42")
        self.create_domain("other.example", token=self.MASTER, partner_ref="partner_17")
        self.domain = self.env["emboux.mail.domain"].search(
            [("name", "=", "out.example")]
        )

    def _outbound(self, token, name="out.example"):
        response = self.api("GET", OUTBOUND.format(name), token=token)
        return self.assertAnswer(response, 200, OUTBOUND_KEYS)

    def _increment(self, name="out.example", **body):
        response = self.master("POST", INCREMENT.format(name), json=body or None)
        return self.assertAnswer(response, 200, INCREMENT_KEYS)

    # -- GET /outbound -----------------------------------------------------------
    def test_get(self):
        expected = {
            "name": "out.example",
            "outbound_tier": "shared",
            "outbound_status": "active",
            "outbound_daily_limit": 100,
            "outbound_monthly_limit": 1000,
            "outbound_sent_today": 0,
            "outbound_sent_month": 0,
            "outbound_enforcement": "hard",
            "bounce_count": 0,
            "complaint_count": 0,
            "bounce_rate": 0.0,
            "complaint_rate": 0.0,
            "ses_verified": False,
        }
        for token in (self.MASTER, self.DB_MASTER, self.TOKEN_A):
            with self.subTest(token=token):
                self.assertEqual(self._outbound(token), expected)

    def test_not_found(self):
        """Another tenant's domain answers exactly like a missing one."""
        for method, template, body in (
            ("GET", OUTBOUND, None),
            ("PUT", OUTBOUND, {"outbound_daily_limit": 10}),
            ("GET", TRANSFER, None),
        ):
            for name in ("out.example", "missing.example", "not a domain"):
                with self.subTest(method=method, path=template, name=name):
                    response = self.as_b(method, template.format(name), json=body)
                    self.assertDetail(response, 404, "Domain not found")
        for method, template, body in (
            ("GET", OUTBOUND, None),
            ("PUT", OUTBOUND, {"outbound_tier": "dedicated"}),
            ("POST", INCREMENT, {}),
            ("GET", TRANSFER, None),
            ("PUT", TRANSFER, {"transfer_monthly_mb": 1}),
        ):
            with self.subTest(method=method, path=template):
                path = template.format("missing.example")
                response = self.master(method, path, json=body)
                self.assertDetail(response, 404, "Domain not found")
        self.assertEqual(self.domain.outbound_daily_limit, 100)

    # -- PUT /outbound -----------------------------------------------------------
    def test_master_sets_everything(self):
        body = {
            "outbound_daily_limit": 0,
            "outbound_monthly_limit": 90000,
            "outbound_tier": "dedicated",
            "outbound_enforcement": "soft",
            "outbound_status": "suspended",
        }
        response = self.master("PUT", OUTBOUND.format("out.example"), json=body)
        answer = self.assertAnswer(response, 200, OUTBOUND_KEYS)
        self.assertEqual({k: answer[k] for k in body}, body)
        self.assertEqual(self._outbound(self.TOKEN_A), answer)
        self.assertRecordValues(self.domain, [body])
        # partial: only what is given changes
        path = OUTBOUND.format("out.example")
        response = self.master("PUT", path, json={"outbound_status": "active"})
        answer = self.assertAnswer(response, 200, OUTBOUND_KEYS)
        self.assertEqual(answer["outbound_status"], "active")
        self.assertEqual(answer["outbound_tier"], "dedicated")
        response = self.master("PUT", path, json={})
        self.assertEqual(self.assertAnswer(response, 200, OUTBOUND_KEYS), answer)

    def test_customer_limits_within_plan(self):
        path = OUTBOUND.format("out.example")
        body = {"outbound_daily_limit": 400, "outbound_monthly_limit": 1}
        answer = self.assertAnswer(
            self.as_a("PUT", path, json=body), 200, OUTBOUND_KEYS
        )
        self.assertEqual({k: answer[k] for k in body}, body)
        self.assertRecordValues(self.domain, [body])

    def test_customer_limits_above_plan(self):
        path = OUTBOUND.format("out.example")
        for body, detail in (
            (
                {"outbound_daily_limit": 401},
                "Outbound limit exceeds plan maximum (400)",
            ),
            (
                {"outbound_monthly_limit": 5001},
                "Outbound limit exceeds plan maximum (5000)",
            ),
            # unlimited is the operator's to grant
            ({"outbound_daily_limit": 0}, "Outbound limit exceeds plan maximum (400)"),
            (
                {"outbound_daily_limit": 10, "outbound_monthly_limit": 9999},
                "Outbound limit exceeds plan maximum (5000)",
            ),
        ):
            with self.subTest(body=body):
                self.assertDetail(self.as_a("PUT", path, json=body), 403, detail)
        self.assertRecordValues(
            self.domain,
            [{"outbound_daily_limit": 100, "outbound_monthly_limit": 1000}],
        )

    def test_customer_master_fields(self):
        path = OUTBOUND.format("out.example")
        for body in (
            {"outbound_tier": "dedicated"},
            {"outbound_enforcement": "soft"},
            {"outbound_status": "suspended"},
            # the current value is still the operator's to set
            {"outbound_daily_limit": 10, "outbound_tier": "shared"},
        ):
            with self.subTest(body=body):
                response = self.as_a("PUT", path, json=body)
                self.assertDetail(response, 403, "Master token required")
        self.assertRecordValues(
            self.domain,
            [
                {
                    "outbound_daily_limit": 100,
                    "outbound_tier": "shared",
                    "outbound_enforcement": "hard",
                    "outbound_status": "active",
                }
            ],
        )

    def test_invalid_bodies(self):
        outbound = OUTBOUND.format("out.example")
        increment = INCREMENT.format("out.example")
        transfer = TRANSFER.format("out.example")
        for path, body, field, kind in (
            (outbound, {"outbound_daily_limit": "lots"}, "outbound_daily_limit", None),
            (outbound, {"outbound_daily_limit": 1.5}, "outbound_daily_limit", None),
            (outbound, {"outbound_daily_limit": True}, "outbound_daily_limit", None),
            (outbound, {"outbound_daily_limit": None}, "outbound_daily_limit", None),
            (
                outbound,
                {"outbound_monthly_limit": -1},
                "outbound_monthly_limit",
                "greater_than_equal",
            ),
            (outbound, {"outbound_tier": "premium"}, "outbound_tier", "enum"),
            (
                outbound,
                {"outbound_enforcement": "HARD"},
                "outbound_enforcement",
                "enum",
            ),
            (outbound, {"outbound_status": 1}, "outbound_status", "string_type"),
            (outbound, [], None, "dict_type"),
            (increment, {"recipients": 0}, "recipients", "greater_than_equal"),
            (increment, {"size": -1}, "size", "greater_than_equal"),
            (increment, {"size": "big"}, "size", "int_type"),
            (transfer, {"transfer_monthly_mb": -5}, "transfer_monthly_mb", None),
            (transfer, {"transfer_monthly_mb": "x"}, "transfer_monthly_mb", None),
            (transfer, {}, "transfer_monthly_mb", "missing"),
        ):
            with self.subTest(path=path, body=body):
                method = "POST" if path == increment else "PUT"
                response = self.master(method, path, json=body)
                loc = ["body", field] if field else ["body"]
                self.assertInvalid(response, loc, kind)
        response = self.master("PUT", outbound, json={"outbound_tier": "premium"})
        error = self.assertInvalid(response, ["body", "outbound_tier"], "enum")
        self.assertEqual(error["msg"], "Input should be 'shared' or 'dedicated'")
        self.assertEqual(error["input"], "premium")
        self.assertRecordValues(
            self.domain, [{"outbound_tier": "shared", "transfer_monthly_mb": 2048}]
        )
        self.assertEqual(self._outbound(self.MASTER)["outbound_sent_today"], 0)

    # -- POST /outbound/increment ------------------------------------------------
    def test_increment_master_only(self):
        for token in (self.TOKEN_A, self.TOKEN_B):
            for name in ("out.example", "missing.example"):
                with self.subTest(token=token, name=name):
                    response = self.api("POST", INCREMENT.format(name), token=token)
                    self.assertDetail(response, 403, "Master token required")
        self.assertEqual(self._outbound(self.MASTER)["outbound_sent_today"], 0)

    def test_increment_hard(self):
        self.domain.outbound_daily_limit = 2
        for count in (1, 2):
            self.assertEqual(
                self._increment(),
                {
                    "name": "out.example",
                    "outbound_sent_today": count,
                    "outbound_sent_month": count,
                    "allowed": True,
                    "reason": None,
                },
            )
        self.assertEqual(
            self._increment(),
            {
                "name": "out.example",
                "outbound_sent_today": 2,
                "outbound_sent_month": 2,
                "allowed": False,
                "reason": "Daily sending limit reached for out.example (2 messages)",
            },
        )
        figures = self._outbound(self.TOKEN_A)
        self.assertEqual(
            (figures["outbound_sent_today"], figures["outbound_sent_month"]), (2, 2)
        )

    def test_increment_soft(self):
        self.domain.write({"outbound_daily_limit": 1, "outbound_enforcement": "soft"})
        self.assertEqual(self._increment()["reason"], None)
        for count in (2, 3):
            self.assertEqual(
                self._increment(),
                {
                    "name": "out.example",
                    "outbound_sent_today": count,
                    "outbound_sent_month": count,
                    "allowed": True,
                    "reason": "Daily sending limit reached for out.example (1 message)",
                },
            )
        self.assertEqual(self._outbound(self.MASTER)["outbound_sent_today"], 3)

    def test_increment_body(self):
        """The body is optional; recipients and size count toward the
        month's figures (the transfer)."""
        path = INCREMENT.format("out.example")
        response = self.master("POST", path, data="", headers={})
        self.assertTrue(self.assertAnswer(response, 200, INCREMENT_KEYS)["allowed"])
        answer = self._increment(recipients=3, size=3 * 1024 * 1024)
        self.assertEqual(answer["outbound_sent_month"], 2)
        response = self.master("GET", TRANSFER.format("out.example"))
        self.assertEqual(response.json()["transfer_used_mb"], 3.0)
        self.assertInvalid(
            self.master("POST", path, data="{", headers={}), ["body"], "json_invalid"
        )

    def test_increment_refused_domain(self):
        """The policy service's other refusals come through as they are."""
        path = OUTBOUND.format("out.example")
        self.master("PUT", path, json={"outbound_status": "suspended"})
        answer = self._increment()
        self.assertFalse(answer["allowed"])
        self.assertEqual(answer["reason"], "Outbound mail suspended for out.example")
        self.assertEqual(answer["outbound_sent_today"], 0)

    # -- transfer ------------------------------------------------------------------
    def test_transfer(self):
        path = TRANSFER.format("out.example")
        expected = {
            "name": "out.example",
            "transfer_monthly_mb": 2048,
            "transfer_used_mb": 0.0,
        }
        for token in (self.MASTER, self.TOKEN_A):
            with self.subTest(token=token):
                response = self.api("GET", path, token=token)
                self.assertEqual(
                    self.assertAnswer(response, 200, TRANSFER_KEYS), expected
                )
        response = self.master("PUT", path, json={"transfer_monthly_mb": 0})
        expected["transfer_monthly_mb"] = 0
        self.assertEqual(self.assertAnswer(response, 200, TRANSFER_KEYS), expected)
        self.assertEqual(self.domain.transfer_monthly_mb, 0)
        self.assertEqual(self.as_a("GET", path).json(), expected)

    def test_transfer_master_only(self):
        for token in (self.TOKEN_A, self.TOKEN_B):
            for name in ("out.example", "other.example", "missing.example"):
                with self.subTest(token=token, name=name):
                    response = self.api(
                        "PUT",
                        TRANSFER.format(name),
                        token=token,
                        json={"transfer_monthly_mb": 1},
                    )
                    self.assertDetail(response, 403, "Master token required")
        self.assertEqual(self.domain.transfer_monthly_mb, 2048)

    # -- counted like every route ----------------------------------------------------
    def test_usage_counted(self):
        with self.postcommit_hooks():
            self._outbound(self.TOKEN_A)
            path = OUTBOUND.format("out.example")
            response = self.as_a("PUT", path, json={"outbound_daily_limit": 0})
            self.assertEqual(response.status_code, 403)
            self.as_a("GET", TRANSFER.format("out.example"))
        usage = self.master("GET", f"/api-keys/{self.TOKEN_A}/usage").json()
        self.assertEqual(
            usage["by_route"],
            {
                "GET /domains/{domain_name}/outbound": 1,
                "PUT /domains/{domain_name}/outbound": 1,
                "GET /domains/{domain_name}/transfer": 1,
            },
        )
