"""Storage use and retention in the customer portal: the usage the mail
server reports, shown per mailbox, domain and customer; the banner naming a
customer's near-full mailboxes, never another's; how long a domain keeps its
mail, within the plan; and what a page of 1,000 mailboxes costs in queries."""

import logging

from lxml import html

from odoo import sql_db
from odoo.tests import tagged
from odoo.tools import SQL

from ..models.emboux_mail_domain import MEBIBYTE
from ..models.emboux_mail_mailbox import USAGE_TABLE
from .test_portal import EmbouxPortalCase

_logger = logging.getLogger(__name__)

# what the mail server (Dovecot's quota_clone) runs for each mailbox
REPORT_SQL = (
    "INSERT INTO {table} (email, bytes, messages) VALUES (%s, %s, %s) "
    "ON CONFLICT (email) DO UPDATE "
    "SET bytes = EXCLUDED.bytes, messages = EXCLUDED.messages"
)


@tagged("post_install", "-at_install")
class TestStoragePortal(EmbouxPortalCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.plan.max_retention_days = 365

    # -- helpers --------------------------------------------------------------
    def report_usage(self, usage):
        """Write the usage rows as the mail server does: ``{email: MB}``."""
        self.env.flush_all()
        for email, used_mb in usage.items():
            self.env.cr.execute(
                SQL(
                    REPORT_SQL.format(table=USAGE_TABLE),
                    email,
                    round(used_mb * MEBIBYTE),
                    100,
                )
            )
        self.env.invalidate_all()

    def retention_url(self, domain=None):
        return self.domain_url(domain, "/retention")

    def assertRetention(self, days):
        self.domain.invalidate_recordset()
        self.assertEqual(self.domain.retention_days, days)

    @staticmethod
    def links(response, css_class):
        tree = html.fromstring(response.text)
        return tree.xpath(f"//a[contains(@class, '{css_class}')]/@href")

    def count_queries(self, url):
        """The queries of a GET of ``url``, after one to warm the caches,
        by the process' counter: it counts those of every cursor, the HTTP
        worker's included."""
        self.assertEqual(self.get(url).status_code, 200)
        before = sql_db.sql_counter
        response = self.get(url)
        count = sql_db.sql_counter - before
        self.assertEqual(response.status_code, 200)
        return count, response

    # -- usage ----------------------------------------------------------------
    def test_usage_of_mailboxes_domains_and_customer(self):
        unlimited = self.Mailbox.create({"email": "big@acme.test", "quota_mb": 0})
        self.report_usage({"info@acme.test": 125, unlimited.email: 1234.5})
        self.login(self.acme_user)
        page = self.get(self.domain_url())
        rows = self.texts(page, "o_emboux_mailbox_row")
        self.assertEqual(
            rows,
            [
                "big@acme.test 1,234.5 MB of unlimited Password Delete",
                "info@acme.test 125.0 MB of 500 MB (25.0 %) Password Delete",
            ],
        )
        tree = html.fromstring(page.text)
        bars = tree.xpath("//tr[contains(@class, 'o_emboux_mailbox_row')]")
        # a bar for the mailbox with a quota only, at its share of it
        self.assertFalse(bars[0].xpath(".//*[contains(@class, 'progress')]"))
        [progress] = bars[1].xpath(".//div[@role='progressbar']")
        self.assertEqual(progress.get("aria-valuenow"), "25.0")
        [bar] = progress.xpath("./div[contains(@class, 'progress-bar')]")
        self.assertEqual(bar.get("style"), "width: 25.0%")
        self.assertNotIn("bg-", bar.get("class"))
        self.assertEqual(
            self.texts(page, "o_emboux_domain_storage"),
            ["The mailboxes of this domain use 1,359.5 MB of storage."],
        )
        # the domains list: each domain's total, and the customer's
        second = self.Domain.create({"name": "acme2.test", "partner_id": self.acme.id})
        self.Mailbox.create({"email": "x@acme2.test"})
        self.report_usage({"x@acme2.test": 0.5})
        page = self.get("/my/email")
        self.assertEqual(
            self.texts(page, "o_emboux_domain_storage"), ["1,359.5 MB", "0.5 MB"]
        )
        self.assertEqual(
            self.texts(page, "o_emboux_customer_storage"),
            ["Your mailboxes use 1,360.0 MB of storage."],
        )
        self.assertEqual(second.used_mb, 0.5)

    def test_no_usage_reported_yet(self):
        self.login(self.acme_user)
        page = self.get(self.domain_url())
        self.assertEqual(
            self.texts(page, "o_emboux_mailbox_row"),
            ["info@acme.test 0.0 MB of 500 MB (0.0 %) Password Delete"],
        )
        self.assertFalse(self.texts(page, "o_emboux_storage_banner"))
        self.assertEqual(
            self.texts(self.get("/my/email"), "o_emboux_customer_storage"),
            ["Your mailboxes use 0.0 MB of storage."],
        )

    # -- banner ---------------------------------------------------------------
    def test_banner_names_only_the_customers_near_full_mailboxes(self):
        self.Mailbox.create(
            [{"email": "second@acme.test"}, {"email": "third@acme.test"}]
        )
        self.Mailbox.create({"email": "huge@globex.test", "quota_mb": 0})
        self.report_usage(
            {
                "info@acme.test": 400,  # 80%: filling up
                "second@acme.test": 490,  # 98%: almost full
                "third@acme.test": 399,  # under 80%
                "info@globex.test": 499,  # another tenant's, almost full
                "huge@globex.test": 10**6,  # no quota: never full
            }
        )
        acme_url = self.domain_url(tail="#emboux_mailbox_%s")
        self.login(self.acme_user)
        for url in ("/my/home", "/my/email", self.domain_url()):
            with self.subTest(url=url):
                page = self.get(url)
                self.assertEqual(page.status_code, 200)
                banners = html.fromstring(page.text).xpath(
                    "//div[contains(@class, 'o_emboux_storage_banner')]"
                )
                self.assertEqual(
                    [(b.get("data-level"), b.get("class").split()[1]) for b in banners],
                    [("95", "alert-danger"), ("80", "alert-warning")],
                )
                danger, warning = self.texts(page, "o_emboux_storage_banner")
                self.assertIn("Almost full, at 95 % of their storage", danger)
                self.assertIn("more: second@acme.test.", danger)
                self.assertIn("Filling up, at 80 % of their storage", warning)
                self.assertIn("more: info@acme.test.", warning)
                mailbox = self.Mailbox.search([("email", "=", "second@acme.test")])
                self.assertEqual(
                    self.links(page, "o_emboux_storage_mailbox"),
                    [acme_url % mailbox.id, acme_url % self.mailbox.id],
                )
                self.assertNotIn("third@acme.test", " ".join([danger, warning]))
                self.assertNotIn("globex.test", page.text)
        # the link leads to the mailbox's row
        page = self.get(self.domain_url())
        self.assertTrue(
            html.fromstring(page.text).xpath(
                f"//tr[@id='emboux_mailbox_{self.mailbox.id}']"
                "[contains(@class, 'o_emboux_mailbox_row')]"
            )
        )
        # Globex sees its own mailbox only
        self.login(self.globex_user)
        for url in ("/my/home", "/my/email", self.domain_url(self.other_domain)):
            with self.subTest(user="globex", url=url):
                page = self.get(url)
                self.assertEqual(
                    self.texts(page, "o_emboux_storage_banner"),
                    [
                        "Almost full, at 95 % of their storage or more: "
                        "info@globex.test. A full mailbox receives no more mail. "
                        "Delete old mail, or keep mail fewer days (on the domain's "
                        "page)."
                    ],
                )
                self.assertNotIn("acme.test", page.text)

    def test_banner_names_a_few_and_tells_there_are_more(self):
        self.plan.mailboxes_per_domain = 0
        self.Mailbox.create([{"email": f"m{n:02d}@acme.test"} for n in range(12)])
        self.report_usage({f"m{n:02d}@acme.test": 450 for n in range(12)})
        self.login(self.acme_user)
        page = self.get("/my/email")
        [warning] = self.texts(page, "o_emboux_storage_banner")
        self.assertEqual(len(self.links(page, "o_emboux_storage_mailbox")), 10)
        self.assertIn("m09@acme.test and others.", warning)

    # -- retention ------------------------------------------------------------
    def test_customer_sets_the_retention(self):
        self.login(self.acme_user)
        page = self.get(self.domain_url())
        self.assertEqual(self.texts(page, "o_emboux_keep_mail"), ["Keep mail: forever"])
        [form] = html.fromstring(page.text).xpath(
            "//form[contains(@class, 'o_emboux_retention_form')]"
        )
        self.assertEqual(form.get("action"), self.retention_url())
        self.assertTrue(form.xpath(".//input[@name='csrf_token']/@value"))
        [days] = form.xpath(".//input[@name='retention_days']")
        self.assertEqual(
            (days.get("value"), days.get("min"), days.get("max")), ("0", "1", "365")
        )
        self.assertIn(
            "Your plan keeps mail 1 to 365 days.", " ".join(form.text_content().split())
        )

        page = self.follow(self.post(self.retention_url(), {"retention_days": " 30 "}))
        self.assertRetention(30)
        self.assertEqual(
            self.texts(page, "o_emboux_done"), ["The time mail is kept was changed."]
        )
        self.assertEqual(self.texts(page, "o_emboux_keep_mail"), ["Keep mail: 30 days"])
        # without a ceiling, forever is allowed
        self.plan.max_retention_days = 0
        page = self.follow(self.post(self.retention_url(), {"retention_days": "0"}))
        self.assertRetention(0)
        self.assertEqual(self.texts(page, "o_emboux_keep_mail"), ["Keep mail: forever"])
        self.assertIn("0 keeps mail forever.", page.text)
        tree = html.fromstring(page.text)
        self.assertEqual(
            [
                tree.xpath(f"//input[@name='retention_days']/@{a}")
                for a in ("min", "max")
            ],
            [["0"], []],
        )

    def test_bad_retentions_are_refused(self):
        self.domain.retention_days = 7
        self.login(self.acme_user)
        cases = [
            ("abc", 422, "Keep mail: type a whole number of days."),
            ("1.5", 422, "Keep mail: type a whole number of days."),
            ("", 422, "Keep mail: type a whole number of days."),
            ("9" * 12, 422, "Keep mail: type a whole number of days."),
            ("-5", 422, "Keep mail: a number of days cannot be negative."),
            ("366", 403, "Keep mail: 366 days is not allowed; your plan keeps mail"),
            ("0", 403, "your plan keeps mail 1 to 365 days."),
        ]
        for value, status, message in cases:
            with self.subTest(value=value):
                response = self.post(self.retention_url(), {"retention_days": value})
                page = self.assertError(response, status, message)
                self.assertRetention(7)
                self.assertEqual(
                    self.texts(page, "o_emboux_keep_mail"), ["Keep mail: 7 days"]
                )
                # the value typed is given back to correct it, once
                self.assertEqual(
                    html.fromstring(page.text).xpath(
                        "//input[@name='retention_days']/@value"
                    ),
                    [value],
                )
                again = self.get(response.headers["Location"])
                self.assertEqual(
                    html.fromstring(again.text).xpath(
                        "//input[@name='retention_days']/@value"
                    ),
                    ["7"],
                )

    def test_retention_set_by_the_operator_beyond_the_plan_stays(self):
        self.domain.retention_days = 1000
        self.login(self.acme_user)
        page = self.follow(self.post(self.retention_url(), {"retention_days": "1000"}))
        self.assertFalse(self.texts(page, "o_emboux_error"))
        self.assertRetention(1000)

    def test_other_tenants_domain_is_not_found(self):
        self.domain.retention_days = 7
        self.login(self.globex_user)
        for url in (self.retention_url(), "/my/email/domain/999999999/retention"):
            with self.subTest(url=url):
                response = self.post(url, {"retention_days": "30"})
                self.assertEqual(response.status_code, 404)
        self.assertRetention(7)
        # the own domain's form answers, and only to a POST with the token: a
        # GET leads to the domain's page
        response = self.get(self.retention_url(self.other_domain))
        self.assertEqual(response.status_code, 303)
        self.assertEqual(
            response.headers["Location"].split("?")[0],
            self.domain_url(self.other_domain),
        )
        self.assertEqual(self.follow(response).status_code, 200)
        with self.assertLogs("odoo.http", "WARNING"):
            response = self.post(
                self.retention_url(self.other_domain), {"retention_days": "30"}, False
            )
        self.assertEqual(response.status_code, 400)
        self.assertEqual(self.other_domain.retention_days, 0)
        self.authenticate(None, None)
        response = self.post(self.retention_url(), {"retention_days": "30"})
        self.assertEqual(response.status_code, 303)
        self.assertIn("/web/login", response.headers["Location"])
        self.assertRetention(7)

    # -- queries --------------------------------------------------------------
    def test_queries_of_a_page_of_1000_mailboxes(self):
        """The usage of a list is read at once: a page of 1,000 mailboxes
        costs as many queries with usage rows as without, and no more than a
        page of one mailbox."""
        self.report_usage({self.mailbox.email: 100})
        self.login(self.acme_user)
        one, _page = self.count_queries(self.domain_url())
        self.plan.mailboxes_per_domain = 0
        domain = self.Domain.create(
            {"name": "big.acme.test", "partner_id": self.acme.id}
        )
        mailboxes = self.Mailbox.create(
            [{"email": f"user{n:04d}@big.acme.test"} for n in range(1000)]
        )
        url = self.domain_url(domain)
        without, page = self.count_queries(url)
        self.assertEqual(len(self.texts(page, "o_emboux_mailbox_row")), 1000)
        self.assertFalse(self.texts(page, "o_emboux_storage_banner"))

        # 0 to 499 MB of 500: below, at and above both warning levels
        self.report_usage({m.email: n % 500 for n, m in enumerate(mailboxes)})
        with_usage, page = self.count_queries(url)
        rows = self.texts(page, "o_emboux_mailbox_row")
        self.assertEqual(len(rows), 1000)
        self.assertIn("user0400@big.acme.test 400.0 MB of 500 MB (80.0 %)", rows[400])
        # 10 per warning level
        self.assertEqual(len(self.links(page, "o_emboux_storage_mailbox")), 20)
        self.assertEqual(
            self.texts(page, "o_emboux_domain_storage"),
            # each MB from 0 to 499, twice
            [f"The mailboxes of this domain use {499 * 500:,}.0 MB of storage."],
        )
        _logger.info(
            "portal list of 1000 mailboxes: %s queries without usage rows, "
            "%s with usage rows (%s for a list of one)",
            without,
            with_usage,
            one,
        )
        self.assertEqual(without, with_usage)
        # no more than the list of one (whose domain has an alias to read too)
        self.assertLessEqual(with_usage, one)

    # -- tour -----------------------------------------------------------------
    def test_storage_tour(self):
        self.Mailbox.create({"email": "archive@acme.test"})
        self.report_usage({"info@acme.test": 450, "archive@acme.test": 100})
        self.start_tour("/my", "emboux_mail_storage_tour", login=self.acme_user.login)
        self.assertRetention(30)
