"""Storage use and retention: the rules and the backend."""

import logging

from lxml import etree
from psycopg2 import IntegrityError

from odoo.tests import Form, new_test_user, tagged
from odoo.tools import SQL, mute_logger
from odoo.tools.safe_eval import safe_eval

from ..exceptions import EmbouxQuotaError, EmbouxValidationError
from ..models.emboux_mail_mailbox import USAGE_TABLE, WARNING_TABLE
from ..services import emboux_client as ec
from .common import EmbouxMailCase
from .test_sync import ConnectedCase

_logger = logging.getLogger(__name__)

MEBIBYTE = 1024 * 1024
LIST_VIEW = "emboux_mail.emboux_mail_mailbox_view_list"
SEARCH_VIEW = "emboux_mail.emboux_mail_mailbox_view_search"
USAGE_FIELDS = ("used_mb", "used_percent")


class StorageCase(EmbouxMailCase):
    """Mailboxes of 100 MB, and the mail server reporting their use."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.plan.write({"quota_mb": 100, "mailboxes_per_domain": 0})
        cls.tenant.email = "acme@customer.example"
        cls.domain = cls.Domain.create(
            {"name": "storage.example", "partner_id": cls.tenant.id}
        )
        cls.mailbox = cls.Mailbox.create({"email": "info@storage.example"})

    def report_usage(self, usage):
        """The mail server reports ``{email: (bytes, messages)}``, the way
        Dovecot's quota_clone writes it."""
        emails = list(usage)
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                "INSERT INTO emboux_mail_mailbox_usage (email, bytes, messages)"
                " SELECT * FROM unnest(%s::varchar[], %s::bigint[], %s::bigint[])"
                " ON CONFLICT (email) DO UPDATE"
                " SET bytes = EXCLUDED.bytes, messages = EXCLUDED.messages",
                emails,
                [usage[email][0] for email in emails],
                [usage[email][1] for email in emails],
            )
        )
        self.env.invalidate_all()

    def report(self, mailbox, megabytes, messages=1):
        self.report_usage({mailbox.email: (int(megabytes * MEBIBYTE), messages)})

    def usage_row(self, email):
        self.env.cr.execute(
            SQL(
                "SELECT bytes, messages, warned_level FROM %s WHERE email = %s",
                SQL.identifier(USAGE_TABLE),
                email,
            )
        )
        return self.env.cr.fetchone()

    def queued(self, email):
        self.env.cr.execute(
            SQL(
                "SELECT count(*) FROM %s WHERE email = %s",
                SQL.identifier(WARNING_TABLE),
                email,
            )
        )
        return self.env.cr.fetchone()[0]


@tagged("post_install", "-at_install")
class TestStorage(StorageCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cron = cls.env.ref("emboux_mail.ir_cron_mailbox_usage_warnings")

    def warnings(self, mailbox):
        return self.env["mail.message"].search(
            [
                ("model", "=", mailbox._name),
                ("res_id", "=", mailbox.id),
                ("message_type", "=", "comment"),
            ]
        )

    # -- figures ---------------------------------------------------------------
    def test_usage_and_totals(self):
        sales = self.Mailbox.create({"email": "sales@storage.example", "quota_mb": 200})
        empty = self.Mailbox.create({"email": "empty@storage.example"})
        unlimited = self.Mailbox.create(
            {"email": "archive@storage.example", "quota_mb": 0}
        )
        other = self.make_domain("other.example")
        elsewhere = self.Mailbox.create({"email": "a@other.example"})
        stranger = self.make_tenant("Stranger")
        self.report_usage(
            {
                self.mailbox.email: (25 * MEBIBYTE, 10),
                sales.email: (50 * MEBIBYTE, 20),
                unlimited.email: (300 * MEBIBYTE, 7),
                elsewhere.email: (MEBIBYTE // 2, 1),
            }
        )
        self.assertRecordValues(
            self.mailbox | sales | empty | unlimited | elsewhere,
            [
                {"used_mb": 25.0, "used_messages": 10, "used_percent": 25.0},
                {"used_mb": 50.0, "used_messages": 20, "used_percent": 25.0},
                {"used_mb": 0.0, "used_messages": 0, "used_percent": 0.0},
                # no quota, no share of it
                {"used_mb": 300.0, "used_messages": 7, "used_percent": 0.0},
                {"used_mb": 0.5, "used_messages": 1, "used_percent": 0.5},
            ],
        )
        self.assertRecordValues(
            self.domain | other, [{"used_mb": 375.0}, {"used_mb": 0.5}]
        )
        self.assertRecordValues(
            self.tenant | stranger, [{"emboux_used_mb": 375.5}, {"emboux_used_mb": 0}]
        )
        # the next report replaces the figures
        self.report(sales, 150, messages=21)
        self.assertRecordValues(
            sales, [{"used_mb": 150.0, "used_messages": 21, "used_percent": 75.0}]
        )
        self.assertEqual(self.domain.used_mb, 475.0)

    def test_search_and_order(self):
        half = self.Mailbox.create({"email": "half@storage.example", "quota_mb": 400})
        empty = self.Mailbox.create({"email": "empty@storage.example"})
        full = self.Mailbox.create({"email": "full@storage.example"})
        unlimited = self.Mailbox.create(
            {"email": "archive@storage.example", "quota_mb": 0}
        )
        self.report_usage(
            {
                self.mailbox.email: (85 * MEBIBYTE, 1),
                half.email: (200 * MEBIBYTE, 1),
                full.email: (97 * MEBIBYTE, 1),
                unlimited.email: (900 * MEBIBYTE, 1),
            }
        )
        mine = [("domain_id", "=", self.domain.id)]
        self.assertEqual(
            self.Mailbox.search([*mine, ("used_percent", ">=", 80)]),
            self.mailbox | full,
        )
        self.assertEqual(self.Mailbox.search([*mine, ("used_mb", "<", 1)]), empty)
        self.assertEqual(self.Mailbox.search([*mine, ("used_messages", "=", 0)]), empty)
        self.assertEqual(
            self.Mailbox.search(mine, order="used_percent desc, id").ids,
            [full.id, self.mailbox.id, half.id, empty.id, unlimited.id],
        )
        self.assertEqual(
            self.Mailbox.search(mine, order="used_mb desc").ids,
            [unlimited.id, half.id, full.id, self.mailbox.id, empty.id],
        )
        other = self.make_domain("other.example")
        self.assertEqual(
            self.Domain.search(
                [("id", "in", (self.domain | other).ids)], order="used_mb"
            ),
            other | self.domain,
        )
        self.assertEqual(self.Domain.search([("used_mb", ">", 1000)]), self.domain)
        self.assertIn(
            self.tenant, self.env["res.partner"].search([("emboux_used_mb", ">", 1000)])
        )

    def test_search_view_filters(self):
        nearly = self.Mailbox.create({"email": "nearly@storage.example"})
        full = self.Mailbox.create({"email": "full@storage.example"})
        self.report(self.mailbox, 79.9)
        self.report(nearly, 80)
        self.report(full, 95)
        arch = etree.fromstring(
            self.Mailbox.get_view(self.env.ref(SEARCH_VIEW).id)["arch"]
        )
        mine = [("domain_id", "=", self.domain.id)]
        for name, expected in (("nearly_full", nearly | full), ("full", full)):
            with self.subTest(filter=name):
                [node] = arch.xpath(f"//filter[@name='{name}']")
                found = self.Mailbox.search([*mine, *safe_eval(node.get("domain"))])
                self.assertEqual(found, expected)

    # -- warnings --------------------------------------------------------------
    def test_each_crossing_is_told_once(self):
        steps = (
            # (MB used of 100, the warnings told so far)
            (50, 0),
            (80, 1),  # crosses 80%
            (85, 1),  # still above: nothing new
            (94.9, 1),
            (95, 2),  # crosses 95%
            (99, 2),
            (85, 2),  # back under 95%, still above 80%: nothing
            (50, 2),  # under 80%: the warning is armed again
            (81, 3),  # crosses 80% again
        )
        for megabytes, told in steps:
            with self.subTest(megabytes=megabytes):
                self.report(self.mailbox, megabytes)
                self.cron.method_direct_trigger()
                self.assertEqual(len(self.warnings(self.mailbox)), told)
                self.assertFalse(self.queued(self.mailbox.email))
        # a run without any report tells nothing
        self.cron.method_direct_trigger()
        self.assertEqual(len(self.warnings(self.mailbox)), 3)

    def test_crossings_between_two_runs_are_told_once(self):
        self.report(self.mailbox, 82)
        self.report(self.mailbox, 97)
        self.assertEqual(self.queued(self.mailbox.email), 2)
        self.cron.method_direct_trigger()
        [warning] = self.warnings(self.mailbox)
        # with the use as it is now
        self.assertIn("97", warning.body)
        self.assertFalse(self.queued(self.mailbox.email))

    def test_a_new_quota_is_weighed_at_once(self):
        """Lowering the quota under the use warns without waiting for mail;
        raising it re-arms the warning."""
        self.report(self.mailbox, 50)
        self.mailbox.quota_mb = 60  # 50 of 60: 83%
        self.cron.method_direct_trigger()
        self.assertEqual(len(self.warnings(self.mailbox)), 1)
        self.mailbox.quota_mb = 1000
        self.assertEqual(self.usage_row(self.mailbox.email)[2], 0)
        self.mailbox.quota_mb = 52  # 96%
        self.cron.method_direct_trigger()
        self.assertEqual(len(self.warnings(self.mailbox)), 2)

    def test_unlimited_quota_never_warns(self):
        unlimited = self.Mailbox.create(
            {"email": "archive@storage.example", "quota_mb": 0}
        )
        for megabytes in (80, 95, 10_000):
            self.report(unlimited, megabytes)
        self.assertEqual(self.usage_row(unlimited.email)[2], 0)
        self.assertFalse(self.queued(unlimited.email))
        self.cron.method_direct_trigger()
        self.assertFalse(self.warnings(unlimited))

    def test_warning_goes_to_the_customer(self):
        self.report(self.mailbox, 82)
        self.cron.method_direct_trigger()
        [warning] = self.warnings(self.mailbox)
        self.assertEqual(warning.partner_ids, self.tenant)
        self.assertEqual(warning.subtype_id, self.env.ref("mail.mt_comment"))
        self.assertEqual(
            warning.subject, "Your mailbox info@storage.example is nearly full"
        )
        self.assertIn("82", warning.body)
        mail = (
            self.env["mail.mail"].sudo().search([("mail_message_id", "=", warning.id)])
        )
        self.assertEqual(mail.recipient_ids, self.tenant)

    def test_unlink_removes_the_usage(self):
        other = self.Mailbox.create({"email": "other@storage.example"})
        self.report(self.mailbox, 10)
        self.report(other, 20)
        self.mailbox.unlink()
        self.assertIsNone(self.usage_row("info@storage.example"))
        self.assertEqual(self.usage_row(other.email)[0], 20 * MEBIBYTE)


@tagged("post_install", "-at_install")
class TestStorageQueries(StorageCase):
    """The backend's mailbox list reads the use of a page of mailboxes in one
    query, however many there are and whether they have used any."""

    COUNT = 1000

    def count_queries(self, model, specification):
        self.env.invalidate_all()
        before = self.env.cr.sql_log_count
        result = model.web_search_read(
            [("domain_id", "=", self.bulk.id)], specification, limit=self.COUNT
        )
        queries = self.env.cr.sql_log_count - before
        self.assertEqual(len(result["records"]), self.COUNT)
        return queries

    def test_list_query_count(self):
        self.bulk = self.make_domain("bulk.example")
        mailboxes = self.Mailbox.create(
            [{"email": f"user{n:04d}@bulk.example"} for n in range(self.COUNT)]
        )
        operator = new_test_user(
            self.env,
            login="storage_operator",
            groups="emboux_mail.group_emboux_mail_user",
        )
        Mailbox = self.Mailbox.with_user(operator)
        arch = Mailbox.get_view(self.env.ref(LIST_VIEW).id, "list")["arch"]
        names = [node.get("name") for node in etree.fromstring(arch).iter("field")]
        self.assertTrue(set(USAGE_FIELDS) <= set(names))
        specification = {
            name: {"fields": {"display_name": {}}}
            if Mailbox._fields[name].type == "many2one"
            else {}
            for name in names
        }
        without_usage = {
            name: spec
            for name, spec in specification.items()
            if name not in USAGE_FIELDS
        }
        self.count_queries(Mailbox, specification)  # fills the caches of rules
        no_rows = self.count_queries(Mailbox, specification)
        no_columns = self.count_queries(Mailbox, without_usage)
        self.report_usage(
            {
                mailbox.email: (n * MEBIBYTE // 10, n)
                for n, mailbox in enumerate(mailboxes, start=1)
            }
        )
        with_rows = self.count_queries(Mailbox, specification)
        _logger.info(
            "backend list of %s mailboxes: %s queries without usage rows, %s with "
            "usage rows (%s without the usage columns)",
            self.COUNT,
            no_rows,
            with_rows,
            no_columns,
        )
        self.assertEqual(with_rows, no_rows)
        self.assertLessEqual(abs(with_rows - no_columns), 1)
        # the figures read are the reported ones
        self.assertEqual(mailboxes[-1].used_messages, self.COUNT)
        self.assertEqual(mailboxes[-1].used_mb, self.COUNT / 10)


@tagged("post_install", "-at_install")
class TestRetention(EmbouxMailCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.plan.write({"retention_days": 30, "max_retention_days": 365})
        cls.domain = cls.Domain.create(
            {"name": "keep.example", "partner_id": cls.tenant.id}
        )

    def test_new_domain_takes_its_plans_retention(self):
        self.assertEqual(self.domain.retention_days, 30)
        self.plan.write({"retention_days": 7, "outbound_daily_limit": 123})
        self.assertEqual(self.make_domain("later.example").retention_days, 7)
        # so does one made in the backend's form, its sending limits too
        with Form(self.Domain) as form:
            form.name = "form.example"
            form.partner_id = self.tenant
        self.assertRecordValues(
            form.record, [{"retention_days": 7, "outbound_daily_limit": 123}]
        )

    def test_customer_within_the_plan(self):
        for days in (1, 365, 90):
            self.domain._emboux_set_retention(days, by="customer")
            self.assertEqual(self.domain.retention_days, days)

    def test_customer_beyond_the_plan_is_refused(self):
        # 0 keeps mail forever: beyond any ceiling
        for days in (366, 0, -1):
            with self.subTest(days=days):
                with self.assertEmbouxError(
                    EmbouxQuotaError, "Retention exceeds plan maximum (365 days)", 403
                ) as raised:
                    self.domain._emboux_set_retention(days, by="customer")
                self.assertIn("keeps mail 1 to 365 days", str(raised.exception))
        self.assertEqual(self.domain.retention_days, 30)

    def test_no_ceiling_lets_the_customer_keep_mail_forever(self):
        self.plan.max_retention_days = 0
        for days in (0, 5000):
            self.domain._emboux_set_retention(days, by="customer")
            self.assertEqual(self.domain.retention_days, days)

    def test_master_sets_any_retention(self):
        for days in (0, 5000, 1):
            self.domain._emboux_set_retention(days, by="master")
            self.assertEqual(self.domain.retention_days, days)

    def test_negative_retention_is_refused(self):
        with self.assertRaises(IntegrityError), mute_logger("odoo.sql_db"):
            self.domain._emboux_set_retention(-1, by="master")
            self.domain.flush_recordset()


@tagged("post_install", "-at_install")
class TestRetentionSync(ConnectedCase):
    def test_retention_goes_upstream_and_comes_back_on_refusal(self):
        domain = self.make_domain("keep.sync.example")
        self.commit()
        self.upstream.calls.clear()
        domain._emboux_set_retention(90, by="master")
        event = self.Event.search(
            [("res_id", "=", domain.id), ("operation", "=", "domain_retention")]
        )
        self.assertEqual(
            event.payload,
            {"name": "keep.sync.example", "retention_days": 90, "previous_days": 0},
        )
        self.commit()
        self.assertEqual(
            self.upstream.calls, [("set_retention", ("keep.sync.example", 90))]
        )
        self.assertEqual(domain.sync_state, "synced")
        # the same value again changes nothing upstream
        domain._emboux_set_retention(90, by="master")
        self.commit()
        self.assertEqual(len(self.upstream.calls), 1)
        # a refusal takes the change back
        self.upstream.calls.clear()
        self.upstream.fail["set_retention"] = ec.EmbouxBadRequest(
            "400", 400, "Retention too short"
        )
        domain._emboux_set_retention(7, by="master")
        error = self.commit_refused(EmbouxValidationError)
        self.assertIn("Retention too short", str(error))
        self.assertEqual(
            self.upstream.calls, [("set_retention", ("keep.sync.example", 7))]
        )
        self.assertEqual(domain.retention_days, 90)
