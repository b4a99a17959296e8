"""Storage use and retention (§A.3.5): what a mailbox uses, as the mail
server reports it, and how long a domain keeps its mail."""

from .common import EmbouxApiCase

RETENTION = "/domains/{}/retention"
QUOTA = "/users/{}/quota"
RETENTION_KEYS = {"name", "retention_days"}
QUOTA_KEYS = {"email", "quota_mb", "used_mb"}


class TestStorage(EmbouxApiCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.plan_a.write({"retention_days": 365, "max_retention_days": 730})
        cls.plan_b.write({"retention_days": 0, "max_retention_days": 0})

    def setUp(self):
        super().setUp()
        self.create_domain("keep.example", token=self.MASTER, partner_ref="partner_42")
        self.create_domain("other.example", token=self.MASTER, partner_ref="partner_17")
        self.domain = self.env["emboux.mail.domain"].search(
            [("name", "=", "keep.example")]
        )
        self.create_mailbox("box@keep.example", token=self.TOKEN_A)

    def _report_usage(self, email, used, messages):
        """What Dovecot's quota_clone writes after a delivery."""
        self.env.cr.execute(
            "INSERT INTO emboux_mail_mailbox_usage (email, bytes, messages) "
            "VALUES (%s, %s, %s) ON CONFLICT (email) DO UPDATE "
            "SET bytes = EXCLUDED.bytes, messages = EXCLUDED.messages",
            (email, used, messages),
        )

    # -- GET /users/{email}/quota ------------------------------------------------
    def test_quota_reports_use(self):
        path = QUOTA.format("box@keep.example")
        answer = self.assertAnswer(self.as_a("GET", path), 200, QUOTA_KEYS)
        self.assertEqual(
            answer, {"email": "box@keep.example", "quota_mb": 2048, "used_mb": 0.0}
        )
        self._report_usage("box@keep.example", 3 * 1024 * 1024 + 512 * 1024, 7)
        for token in (self.MASTER, self.TOKEN_A):
            with self.subTest(token=token):
                answer = self.api("GET", path, token=token).json()
                self.assertEqual(answer["used_mb"], 3.5)
        answer = self.master("PUT", path, json={"quota_mb": 4096}).json()
        self.assertEqual(answer, {**answer, "quota_mb": 4096, "used_mb": 3.5})
        self.assertDetail(self.as_b("GET", path), 404, "Mailbox not found")

    # -- GET/PUT /domains/{name}/retention -----------------------------------------
    def test_new_domain_takes_the_plan_retention(self):
        self.assertEqual(self.domain.retention_days, 365)
        other = self.env["emboux.mail.domain"].search([("name", "=", "other.example")])
        self.assertEqual(other.retention_days, 0)
        for token in (self.MASTER, self.TOKEN_A):
            with self.subTest(token=token):
                response = self.api(
                    "GET", RETENTION.format("keep.example"), token=token
                )
                self.assertEqual(
                    self.assertAnswer(response, 200, RETENTION_KEYS),
                    {"name": "keep.example", "retention_days": 365},
                )

    def test_customer_within_plan(self):
        path = RETENTION.format("keep.example")
        for days in (1, 30, 730):
            with self.subTest(days=days):
                response = self.as_a("PUT", path, json={"retention_days": days})
                self.assertEqual(
                    self.assertAnswer(response, 200, RETENTION_KEYS),
                    {"name": "keep.example", "retention_days": days},
                )
                self.assertEqual(self.domain.retention_days, days)

    def test_customer_beyond_plan(self):
        path = RETENTION.format("keep.example")
        # keeping mail forever is beyond any longest retention
        for days in (731, 0):
            with self.subTest(days=days):
                response = self.as_a("PUT", path, json={"retention_days": days})
                self.assertDetail(
                    response, 403, "Retention exceeds plan maximum (730 days)"
                )
        self.assertEqual(self.domain.retention_days, 365)

    def test_operator_grant_survives_the_customers_save(self):
        """Beyond the plan by the operator: the customer may send it back
        unchanged, not move it further."""
        path = RETENTION.format("keep.example")
        self.master("PUT", path, json={"retention_days": 1000})
        response = self.as_a("PUT", path, json={"retention_days": 1000})
        self.assertEqual(response.json()["retention_days"], 1000)
        response = self.as_a("PUT", path, json={"retention_days": 1001})
        self.assertDetail(response, 403, "Retention exceeds plan maximum (730 days)")
        self.assertEqual(self.domain.retention_days, 1000)

    def test_customer_without_ceiling(self):
        path = RETENTION.format("other.example")
        for days in (0, 5000):
            with self.subTest(days=days):
                response = self.as_b("PUT", path, json={"retention_days": days})
                self.assertEqual(response.json()["retention_days"], days)

    def test_master_sets_any(self):
        path = RETENTION.format("keep.example")
        for days in (0, 10000, 1):
            with self.subTest(days=days):
                response = self.master("PUT", path, json={"retention_days": days})
                self.assertEqual(
                    self.assertAnswer(response, 200, RETENTION_KEYS)["retention_days"],
                    days,
                )
                self.assertEqual(self.domain.retention_days, days)

    def test_other_tenant_and_missing(self):
        """Another tenant's domain answers exactly like a missing one."""
        for method, body in (("GET", None), ("PUT", {"retention_days": 10})):
            for name in ("keep.example", "missing.example", "not a domain"):
                with self.subTest(method=method, name=name):
                    response = self.as_b(method, RETENTION.format(name), json=body)
                    self.assertDetail(response, 404, "Domain not found")
            response = self.master(
                method, RETENTION.format("missing.example"), json=body
            )
            self.assertDetail(response, 404, "Domain not found")
        self.assertEqual(self.domain.retention_days, 365)

    def test_invalid_bodies(self):
        path = RETENTION.format("keep.example")
        for body, kind in (
            ({"retention_days": -1}, "greater_than_equal"),
            ({"retention_days": "30"}, None),
            ({"retention_days": 1.5}, None),
            ({"retention_days": True}, None),
            ({"retention_days": None}, None),
            ({}, "missing"),
        ):
            with self.subTest(body=body):
                field = ["body", "retention_days"]
                for token in (self.MASTER, self.TOKEN_A):
                    response = self.api("PUT", path, token=token, json=body)
                    self.assertInvalid(response, field, kind)
        self.assertInvalid(self.as_a("PUT", path, json=[]), ["body"], "dict_type")
        self.assertEqual(self.domain.retention_days, 365)
