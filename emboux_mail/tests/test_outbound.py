"""Outbound mail: the sending limits a customer may change, the bounce guard,
the daily and monthly counters, DKIM keys, and the portal's Sending card."""

import threading
import time
from datetime import date

import psycopg2
from cryptography.hazmat.primitives import serialization
from dateutil.relativedelta import relativedelta
from lxml import html

from odoo import fields
from odoo.exceptions import ValidationError
from odoo.service import model as service_model
from odoo.tests import TransactionCase, tagged
from odoo.tools import mute_logger

from ..exceptions import EmbouxForbidden, EmbouxQuotaError, EmbouxUserError
from ..services import dkim, dns_checker
from .common import CommittedWork, EmbouxMailCase, FakeDns
from .test_portal import EmbouxPortalCase

MEBIBYTE = 1024 * 1024
PLAN_SENDING = {
    "outbound_daily_limit": 100,
    "outbound_monthly_limit": 1000,
    "max_outbound_daily_limit": 400,
    "max_outbound_monthly_limit": 5000,
    "transfer_monthly_mb": 2048,
}


class TestOutboundRules(FakeDns, EmbouxMailCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.plan.write(PLAN_SENDING)
        cls.Counter = cls.env["emboux.mail.outbound.counter"]
        cls.Month = cls.env["emboux.mail.outbound.month"]
        cls.DkimKey = cls.env["emboux.mail.dkim.key"].with_context(active_test=False)
        cls.domain = cls.Domain.create(
            {"name": "send.test", "partner_id": cls.tenant.id}
        )

    def counter(self, domain=None, **values):
        return self.Counter.create({"domain_id": (domain or self.domain).id, **values})

    # -- limits ----------------------------------------------------------------
    def test_new_domain_starts_with_its_plans_limits(self):
        self.assertRecordValues(
            self.domain,
            [
                {
                    "outbound_daily_limit": 100,
                    "outbound_monthly_limit": 1000,
                    "transfer_monthly_mb": 2048,
                    "outbound_tier": "shared",
                    "outbound_status": "active",
                    "outbound_enforcement": "hard",
                }
            ],
        )

    def test_customer_changes_limits_within_the_ceilings(self):
        self.domain._emboux_set_outbound(
            {"outbound_daily_limit": 400, "outbound_monthly_limit": 1}, by="customer"
        )
        self.assertEqual(self.domain.outbound_daily_limit, 400)
        self.assertEqual(self.domain.outbound_monthly_limit, 1)
        for name, value in (
            ("outbound_daily_limit", 401),
            ("outbound_monthly_limit", 5001),
            # 0 is unlimited: above any ceiling
            ("outbound_daily_limit", 0),
        ):
            with self.subTest(name=name, value=value):
                ceiling = PLAN_SENDING[f"max_{name}"]
                with self.assertEmbouxError(
                    EmbouxQuotaError,
                    f"Outbound limit exceeds plan maximum ({ceiling})",
                    403,
                ) as raised:
                    self.domain._emboux_set_outbound({name: value}, by="customer")
                self.assertIn(f"your plan allows 1 to {ceiling}", str(raised.exception))
        self.assertEqual(self.domain.outbound_daily_limit, 400)
        self.assertEqual(self.domain.outbound_monthly_limit, 1)

    def test_no_ceiling_lets_the_customer_choose_unlimited(self):
        self.plan.max_outbound_daily_limit = 0
        self.domain._emboux_set_outbound({"outbound_daily_limit": 0}, by="customer")
        self.assertEqual(self.domain.outbound_daily_limit, 0)

    def test_operator_only_settings(self):
        for values in (
            {"outbound_tier": "dedicated"},
            {"outbound_status": "suspended"},
            {"outbound_enforcement": "soft"},
            {"transfer_monthly_mb": 0},
            # one forbidden field spoils a request that is otherwise fine
            {"outbound_daily_limit": 10, "outbound_enforcement": "soft"},
        ):
            with self.subTest(values=values):
                with self.assertEmbouxError(
                    EmbouxForbidden, "Master token required", 403
                ):
                    self.domain._emboux_set_outbound(values, by="customer")
        self.assertEqual(self.domain.outbound_daily_limit, 100)
        # the operator sets anything, beyond the plan as well
        self.domain._emboux_set_outbound(
            {
                "outbound_tier": "dedicated",
                "outbound_enforcement": "soft",
                "outbound_daily_limit": 0,
                "transfer_monthly_mb": 0,
            },
            by="operator",
        )
        self.assertRecordValues(
            self.domain,
            [
                {
                    "outbound_tier": "dedicated",
                    "outbound_enforcement": "soft",
                    "outbound_daily_limit": 0,
                    "transfer_monthly_mb": 0,
                }
            ],
        )

    def test_figures_and_usage(self):
        self.counter(
            sent_today=25,
            sent_month=1500,
            over_month=500,
            transfer_month_bytes=512 * MEBIBYTE,
            delivered_count=200,
            bounce_count=3,
            complaint_count=1,
        )
        self.domain.invalidate_recordset()
        self.assertRecordValues(
            self.domain,
            [
                {
                    "outbound_sent_today": 25,
                    "outbound_sent_month": 1500,
                    "outbound_over_month": 500,
                    "transfer_used_mb": 512.0,
                    "bounce_rate": 1.5,
                    "complaint_rate": 0.5,
                    "outbound_daily_usage": 25.0,
                    "outbound_monthly_usage": 150.0,
                    "transfer_usage": 25.0,
                }
            ],
        )
        # unlimited: no usage to show
        self.domain.write({"outbound_daily_limit": 0, "transfer_monthly_mb": 0})
        self.assertEqual(self.domain.outbound_daily_usage, 0)
        self.assertEqual(self.domain.transfer_usage, 0)

    # -- bounce guard ------------------------------------------------------------
    def test_bounce_guard_suspends_once(self):
        admin = self.env.ref("base.user_admin")
        self.domain.user_id = admin
        other = self.make_domain("calm.test")
        self.counter(delivered_count=100, bounce_count=5, guard_tripped=True)
        self.counter(other, delivered_count=100, bounce_count=1)
        messages = len(self.domain.message_ids)
        self.Counter._cron_bounce_guard()
        self.assertEqual(self.domain.outbound_status, "suspended")
        self.assertEqual(other.outbound_status, "active")
        self.assertEqual(len(self.domain.message_ids), messages + 1)
        note = self.domain.message_ids[0]
        self.assertIn("suspended by the bounce guard", note.body)
        self.assertIn("5 of 100 recipients bounced (5.0%)", note.body)
        activity = self.domain.activity_ids
        self.assertEqual(len(activity), 1)
        self.assertEqual(activity.user_id, admin)
        self.assertIn("send.test", activity.summary)
        # the next run finds nothing new to do
        self.Counter._cron_bounce_guard()
        self.assertEqual(len(self.domain.message_ids), messages + 1)
        self.assertEqual(len(self.domain.activity_ids), 1)
        self.assertEqual(other.outbound_status, "active")

    def test_bounce_guard_leaves_a_suspended_domain_alone(self):
        self.domain.outbound_status = "suspended"
        self.counter(delivered_count=100, bounce_count=5, guard_tripped=True)
        messages = len(self.domain.message_ids)
        self.Counter._cron_bounce_guard()
        self.assertEqual(len(self.domain.message_ids), messages)
        self.assertFalse(self.domain.activity_ids)

    def test_reactivation_starts_a_new_bounce_period(self):
        counter = self.counter(
            sent_month=300,
            delivered_count=150,
            bounce_count=9,
            complaint_count=2,
            guard_tripped=True,
        )
        self.Counter._cron_bounce_guard()
        self.assertEqual(self.domain.outbound_status, "suspended")
        self.domain.outbound_status = "active"
        self.assertRecordValues(
            counter,
            [
                {
                    "delivered_count": 0,
                    "bounce_count": 0,
                    "complaint_count": 0,
                    "guard_tripped": False,
                    # what was sent is billed, whatever bounced
                    "sent_month": 300,
                }
            ],
        )
        self.assertEqual(self.domain.bounce_rate, 0)
        # a write that does not reactivate keeps the figures
        counter.write({"bounce_count": 4, "delivered_count": 8})
        self.domain.outbound_status = "active"
        self.assertEqual(counter.bounce_count, 4)

    # -- counters ----------------------------------------------------------------
    def test_daily_reset(self):
        counter = self.counter(sent_today=40, refused_today=3, sent_month=900)
        self.env.flush_all()
        self.Counter._cron_reset_daily()
        counter.invalidate_recordset()
        self.assertRecordValues(
            counter, [{"sent_today": 0, "refused_today": 0, "sent_month": 900}]
        )

    def test_monthly_reset_keeps_the_month_for_billing(self):
        counter = self.counter(
            sent_today=7,
            sent_month=1234,
            over_month=234,
            recipients_month=1500,
            transfer_month_bytes=1.5 * MEBIBYTE,
            delivered_count=1400,
            bounce_count=14,
            complaint_count=2,
        )
        # a domain that sent nothing this month has no month to keep
        self.counter(self.make_domain("idle.test"), bounce_count=1)
        self.env.flush_all()
        self.Counter._cron_reset_monthly()
        counter.invalidate_recordset()
        self.assertRecordValues(
            counter,
            [
                {
                    "sent_month": 0,
                    "over_month": 0,
                    "recipients_month": 0,
                    "transfer_month_bytes": 0,
                    # the day and the bounce period go on
                    "sent_today": 7,
                    "delivered_count": 1400,
                    "bounce_count": 14,
                }
            ],
        )
        months = self.Month.search([("domain_name", "in", ("send.test", "idle.test"))])
        self.assertEqual(len(months), 1)
        closed = fields.Date.today() - relativedelta(days=1)
        self.assertRecordValues(
            months,
            [
                {
                    "domain_id": self.domain.id,
                    "domain_name": "send.test",
                    "partner_id": self.tenant.id,
                    "month": date(closed.year, closed.month, 1),
                    "sent": 1234,
                    "over_limit": 234,
                    "recipients": 1500,
                    "transfer_mb": 1.5,
                    "delivered_count": 1400,
                    "bounce_count": 14,
                    "complaint_count": 2,
                }
            ],
        )
        # the month outlives its domain
        self.domain.unlink()
        months.invalidate_recordset()
        self.assertRecordValues(
            months, [{"domain_id": False, "domain_name": "send.test"}]
        )

    # -- DKIM ------------------------------------------------------------------------
    def test_dkim_key_made_when_first_asked(self):
        self.assertFalse(self.domain.dkim_key_ids)
        self.assertFalse(self.domain.dkim_record_name)
        self.assertFalse(self.domain._emboux_dkim_records(generate=False))
        [(record_type, name, value)] = self.domain._emboux_dkim_records()
        key = self.domain.dkim_key_ids
        self.assertEqual(len(key), 1)
        self.assertEqual(key.selector, "emboux")
        self.assertEqual(record_type, "TXT")
        self.assertEqual(name, "emboux._domainkey.send.test")
        self.assertEqual(value, f"v=DKIM1; k=rsa; p={key.public_key}")
        self.assertEqual(dkim.public_key_of(value), key.public_key)
        self.assertEqual(
            (self.domain.dkim_record_name, self.domain.dkim_record_value),
            (name, value),
        )
        # a 2048-bit RSA key, whose private part signs (readable by the system)
        private = serialization.load_pem_private_key(
            key.sudo().private_key.encode(), password=None
        )
        self.assertEqual(private.key_size, 2048)
        # asked again: the same key
        self.assertEqual(self.domain._emboux_dkim_records()[0][2], value)
        self.assertEqual(
            len(self.DkimKey.search([("domain_id", "=", self.domain.id)])), 1
        )

    def test_dkim_rotation(self):
        first = self.domain._emboux_dkim_key()
        messages = len(self.domain.message_ids)
        self.domain.action_rotate_dkim()
        keys = self.DkimKey.search([("domain_id", "=", self.domain.id)])
        self.assertEqual(keys.mapped("selector"), ["emboux2", "emboux"])
        self.assertRecordValues(keys, [{"active": True}, {"active": False}])
        # the form lists the archived key too, newest first
        self.assertEqual(self.domain.dkim_key_ids, keys)
        self.assertEqual(self.domain.dkim_record_name, "emboux2._domainkey.send.test")
        self.assertNotEqual(keys[0].public_key, first.public_key)
        self.assertEqual(len(self.domain.message_ids), messages + 1)
        self.assertIn("emboux2._domainkey.send.test", self.domain.message_ids[0].body)
        self.domain.action_rotate_dkim()
        self.assertEqual(
            self.domain.dkim_key_ids.filtered("active").selector, "emboux3"
        )

    def test_wildcard_subdomain_signs_with_its_parents_key(self):
        self.plan.domains_allowed = 0
        parent = self.make_domain("wild.test")
        parent.is_wildcard = True
        child = self.make_domain("shop.wild.test")
        self.assertEqual(child.parent_id, parent)
        records = child._emboux_dkim_records()
        self.assertEqual(records, parent._emboux_dkim_records())
        self.assertEqual(records[0][1], "emboux._domainkey.wild.test")
        self.assertFalse(child.dkim_key_ids)
        self.assertEqual(len(parent.dkim_key_ids), 1)
        with self.assertRaisesRegex(EmbouxUserError, "rotate that one"):
            child.action_rotate_dkim()

    def check_dkim(self, zone):
        """Check the domain's DNS against ``zone``: the DKIM row's status."""
        with self.fake_dns(zone):
            self.domain._emboux_check_dns()
        return self.domain.dns_record_ids.filtered(lambda r: r.kind == "DKIM").status

    def test_check_dns_button_says_what_it_found(self):
        with self.fake_dns({}):
            action = self.domain.action_check_dns()
        self.assertEqual(action["tag"], "display_notification")
        params = action["params"]
        self.assertEqual(params["message"], f"{self.domain.name}: Failing")
        self.assertEqual(params["type"], "warning")
        self.assertEqual(params["next"]["tag"], "soft_reload")

    def test_dns_check_finds_the_signing_key(self):
        self.assertFalse(self.domain.ses_verified)
        published = self.dkim_zone("send.test")
        self.assertEqual(self.check_dkim(published), dns_checker.OK)
        self.assertTrue(self.domain.ses_verified)
        # another key at the selector: the mail would not verify
        other = dkim.record_value(dkim.generate()[1])
        text = " ".join(f'"{part}"' for part in dkim.txt_strings(other))
        zone = {(self.domain.dkim_record_name, "TXT"): [text]}
        self.assertEqual(self.check_dkim(zone), dns_checker.INCORRECT)
        self.assertFalse(self.domain.ses_verified)
        self.assertEqual(self.check_dkim({}), dns_checker.MISSING)
        self.assertFalse(self.domain.ses_verified)
        # a rotated key signs at once: until its record is published, the
        # old one's does not count
        self.assertEqual(self.check_dkim(published), dns_checker.OK)
        self.domain.action_rotate_dkim()
        self.assertEqual(self.check_dkim(published), dns_checker.MISSING)
        self.assertFalse(self.domain.ses_verified)
        both = {**published, **self.dkim_zone("send.test")}
        self.assertEqual(self.check_dkim(both), dns_checker.OK)
        self.assertTrue(self.domain.ses_verified)

    # -- settings --------------------------------------------------------------------
    def test_bounce_guard_settings(self):
        settings = self.env["res.config.settings"].create({})
        self.assertEqual(settings.emboux_bounce_rate_limit, 3.0)
        self.assertEqual(settings.emboux_bounce_min_volume, 100)
        settings.write(
            {"emboux_bounce_rate_limit": 5.5, "emboux_bounce_min_volume": 20}
        )
        settings.set_values()
        params = self.env["ir.config_parameter"]
        self.assertEqual(params.get_param("emboux_mail.bounce_rate_limit"), "5.5")
        self.assertEqual(params.get_param("emboux_mail.bounce_min_volume"), "20")
        for values in (
            {"emboux_bounce_rate_limit": 0},
            {"emboux_bounce_rate_limit": 100.5},
            {"emboux_bounce_min_volume": 0},
        ):
            with (
                self.subTest(values=values),
                self.assertRaises(ValidationError),
            ):
                self.env["res.config.settings"].create(values)


@tagged("post_install", "-at_install")
class TestOutboundPortal(EmbouxPortalCase):
    """The Sending card of the domain page, and its limits form."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.plan.write(PLAN_SENDING)
        cls.domain.write(
            {
                "outbound_daily_limit": 100,
                "outbound_monthly_limit": 1000,
                "transfer_monthly_mb": 2048,
            }
        )
        cls.env["emboux.mail.outbound.counter"].create(
            {
                "domain_id": cls.domain.id,
                "sent_today": 25,
                "sent_month": 1000,
                "transfer_month_bytes": 512 * MEBIBYTE,
                "delivered_count": 200,
                "bounce_count": 3,
            }
        )

    def sending_url(self, domain=None):
        return self.domain_url(domain, "/sending")

    def limits(self, daily, monthly):
        return {"outbound_daily_limit": daily, "outbound_monthly_limit": monthly}

    def assertLimits(self, daily, monthly):
        self.domain.invalidate_recordset()
        self.assertEqual(
            (self.domain.outbound_daily_limit, self.domain.outbound_monthly_limit),
            (daily, monthly),
        )

    def form_values(self, response):
        tree = html.fromstring(response.text)
        form = tree.xpath("//form[contains(@class, 'o_emboux_sending_form')]")[0]
        return {
            name: form.xpath(f".//input[@name='{name}']/@value")[0]
            for name in ("outbound_daily_limit", "outbound_monthly_limit")
        }

    def test_sending_card(self):
        self.login(self.acme_user)
        page = self.get(self.domain_url())
        self.assertEqual(page.status_code, 200)
        self.assertEqual(
            self.texts(page, "o_emboux_usage_daily"), ["Sent today 25 / 100"]
        )
        self.assertEqual(
            self.texts(page, "o_emboux_usage_monthly"),
            ["Sent this month 1,000 / 1,000"],
        )
        self.assertEqual(
            self.texts(page, "o_emboux_usage_transfer"),
            ["Transferred this month 512.0 MB / 2,048 MB"],
        )
        tree = html.fromstring(page.text)
        bars = {
            key: tree.xpath(
                f"//*[contains(@class, 'o_emboux_usage_{key}')]"
                "//div[contains(@class, 'progress-bar')]"
            )[0]
            for key in ("daily", "monthly", "transfer")
        }
        self.assertEqual(bars["daily"].get("style"), "width: 25%")
        self.assertEqual(bars["transfer"].get("style"), "width: 25%")
        # the monthly limit is reached
        self.assertEqual(bars["monthly"].get("style"), "width: 100%")
        self.assertIn("bg-danger", bars["monthly"].get("class"))
        self.assertEqual(
            self.texts(page, "o_emboux_bounce_rate"),
            ["Bounce rate: 1.50 % (bounces: 3)"],
        )
        self.assertEqual(self.texts(page, "o_emboux_sending_status"), ["Active"])
        self.assertFalse(self.texts(page, "o_emboux_sending_suspended"))
        # the form shows the limits and the plan's ceilings, with its token
        self.assertEqual(
            self.form_values(page),
            {"outbound_daily_limit": "100", "outbound_monthly_limit": "1000"},
        )
        form = tree.xpath("//form[contains(@class, 'o_emboux_sending_form')]")[0]
        self.assertEqual(form.get("action"), self.sending_url())
        self.assertTrue(form.xpath(".//input[@name='csrf_token']/@value"))
        self.assertEqual(form.xpath(".//input[@type='number']/@max"), ["400", "5000"])
        hints = " ".join(form.text_content().split())
        self.assertIn("Messages per Day Your plan allows up to 400.", hints)
        self.assertIn("Messages per Month Your plan allows up to 5,000.", hints)

    def test_unlimited_and_suspended(self):
        self.plan.write({"max_outbound_daily_limit": 0})
        self.domain.write(
            {
                "outbound_daily_limit": 0,
                "transfer_monthly_mb": 0,
                "outbound_status": "suspended",
            }
        )
        self.login(self.acme_user)
        page = self.get(self.domain_url())
        self.assertEqual(
            self.texts(page, "o_emboux_usage_daily"), ["Sent today 25 / Unlimited"]
        )
        self.assertEqual(
            self.texts(page, "o_emboux_usage_transfer"),
            ["Transferred this month 512.0 MB / Unlimited"],
        )
        tree = html.fromstring(page.text)
        for key in ("daily", "transfer"):
            self.assertFalse(
                tree.xpath(
                    f"//*[contains(@class, 'o_emboux_usage_{key}')]"
                    "//*[contains(@class, 'progress')]"
                )
            )
        self.assertEqual(self.texts(page, "o_emboux_sending_status"), ["Suspended"])
        [suspended] = self.texts(page, "o_emboux_sending_suspended")
        self.assertIn("Sending is suspended", suspended)
        self.assertIn("0 means unlimited.", page.text)

    def test_dkim_record_is_shown_whole(self):
        self.login(self.acme_user)
        page = self.get(self.domain_url())
        _type, name, value = self.domain.sudo()._emboux_dkim_records()[0]
        self.assertGreater(len(value), 255)
        [row] = [r for r in self.texts(page, "o_emboux_dns_row") if name in r]
        self.assertIn(value, row)
        tree = html.fromstring(page.text)
        self.assertIn(value, tree.xpath("//button/@data-copy"))
        # split in strings a zone file takes, as its owner publishes it
        zone = " ".join(f'"{part}"' for part in dkim.txt_strings(value))
        [line] = self.texts(page, "o_emboux_dns_zone")
        self.assertTrue(line.endswith(f"255 characters: {zone}"), line)
        self.assertIn(zone, tree.xpath("//button/@data-copy"))

    def test_customer_changes_a_limit(self):
        self.login(self.acme_user)
        page = self.follow(self.post(self.sending_url(), self.limits("400", "1000")))
        self.assertEqual(
            self.texts(page, "o_emboux_done"), ["The sending limits were changed."]
        )
        self.assertLimits(400, 1000)
        self.assertEqual(
            self.texts(page, "o_emboux_usage_daily"), ["Sent today 25 / 400"]
        )

    def test_limit_above_the_ceiling_is_refused(self):
        self.login(self.acme_user)
        response = self.post(self.sending_url(), self.limits("401", "2000"))
        page = self.assertError(
            response, 403, "Messages per Day: 401 is not allowed", "1 to 400"
        )
        self.assertLimits(100, 1000)
        # what was typed is shown again, to correct it
        self.assertEqual(
            self.form_values(page),
            {"outbound_daily_limit": "401", "outbound_monthly_limit": "2000"},
        )
        self.assertError(
            self.post(self.sending_url(), self.limits("100", "0")),
            403,
            "Messages per Month: 0 is not allowed",
        )
        self.assertLimits(100, 1000)

    def test_limit_must_be_a_whole_number(self):
        self.login(self.acme_user)
        for value in ("", "abc", "12.5", "-3", "1e3", "²", "99999999999"):
            with self.subTest(value=value):
                response = self.post(self.sending_url(), self.limits("200", value))
                self.assertError(
                    response, 422, "Messages per Month: type a whole number"
                )
        self.assertLimits(100, 1000)

    def test_a_limit_beyond_the_plan_stays_when_the_other_changes(self):
        self.domain._emboux_set_outbound({"outbound_daily_limit": 5000}, "operator")
        self.login(self.acme_user)
        response = self.post(self.sending_url(), self.limits("5000", "3000"))
        self.assertEqual(response.status_code, 303, response.text[:2000])
        self.assertLimits(5000, 3000)

    def test_other_tenant_and_visitor(self):
        self.login(self.globex_user)
        response = self.post(self.sending_url(), self.limits("1", "1"))
        self.assertEqual(response.status_code, 404)
        page = self.get(self.domain_url(self.other_domain))
        self.assertNotIn("Sent today 25", " ".join(page.text.split()))
        self.authenticate(None, None)
        response = self.post(self.sending_url(), self.limits("1", "1"))
        self.assertEqual(response.status_code, 303)
        self.assertIn("/web/login", response.headers["Location"])
        self.login(self.acme_user)
        with self.assertLogs("odoo.http", "WARNING"):
            response = self.post(self.sending_url(), self.limits("1", "1"), csrf=False)
        self.assertEqual(response.status_code, 400)
        response = self.get(self.sending_url())
        self.assertEqual(response.status_code, 303)
        self.assertEqual(response.headers["Location"].split("?")[0], self.domain_url())
        self.assertLimits(100, 1000)


@tagged("post_install", "-at_install")
class TestDkimFirstKeyRace(CommittedWork, TransactionCase):
    """The scheduled DKIM preparation and a first look at a domain's DNS may
    make its first key at once, each in its transaction: the second fails
    to serialize, which Odoo replays, and then signs with the first one's
    key; it never meets the unique index (that answered an HTML 400)."""

    def test_second_transaction_is_replayed_onto_the_first_key(self):
        domain_id = self._committed(
            lambda env: env["emboux.mail.domain"].create({"name": "race.dkim.test"}).id
        )
        self.addCleanup(
            self._committed,
            lambda env: env["emboux.mail.domain"].browse(domain_id).unlink(),
        )
        with self.registry.cursor() as first, self.registry.cursor() as second:
            first_env = self._concurrent_env(first)
            second_env = self._concurrent_env(second)
            second.execute("SELECT 1")  # its snapshot predates the first key
            key = first_env["emboux.mail.domain"].browse(domain_id)._emboux_dkim_key()
            failures = []

            @mute_logger("odoo.sql_db")  # the failure is this case's point
            def look():
                try:
                    second_env["emboux.mail.domain"].browse(
                        domain_id
                    )._emboux_dkim_key()
                except psycopg2.Error as error:
                    failures.append(error)

            thread = threading.Thread(target=look)
            thread.start()
            self._wait_until_blocked(first, second)
            first.commit()
            thread.join(30)
            self.assertFalse(thread.is_alive())
            self.assertEqual(
                [type(error) for error in failures],
                [psycopg2.errors.SerializationFailure],
            )
            self.assertIn(
                psycopg2.errors.SerializationFailure,
                service_model.PG_CONCURRENCY_EXCEPTIONS_TO_RETRY,
            )
            second.rollback()
            replayed = second_env["emboux.mail.domain"].browse(domain_id)
            self.assertEqual(replayed._emboux_dkim_key().id, key.id)

    def test_preparation_leaves_a_held_domain_for_later(self):
        """The scheduled preparation skips a domain another transaction
        holds instead of waiting for it (the DNS check, which takes the
        domains in another order, could be waiting for one it holds)."""
        names = ("held.dkim.test", "free.dkim.test")
        held_id, free_id = self._committed(
            lambda env: env["emboux.mail.domain"]
            .create([{"name": n} for n in names])
            .ids
        )
        self.addCleanup(
            self._committed,
            lambda env: env["emboux.mail.domain"].browse([held_id, free_id]).unlink(),
        )

        def prepare(env):
            env.cr.execute("SET LOCAL lock_timeout = '5s'")  # a wait fails the case
            env["emboux.mail.domain"]._cron_prepare_dkim()

        def keyed(env):
            domains = env["emboux.mail.domain"].browse([held_id, free_id])
            return [bool(domain.dkim_key_ids) for domain in domains]

        with self.registry.cursor() as holder:
            holder.execute(
                "UPDATE emboux_mail_domain SET write_date = write_date WHERE id = %s",
                [held_id],
            )
            self._committed(prepare)
            self.assertEqual(self._committed(keyed), [False, True])
        self._committed(prepare)
        self.assertEqual(self._committed(keyed), [True, True])

    def _wait_until_blocked(self, watcher, cr):
        """Until ``cr``'s transaction waits for a lock (read by ``watcher``:
        pg_locks is live, whatever the watcher's snapshot)."""
        pid = cr._cnx.get_backend_pid()
        for _attempt in range(600):
            watcher.execute(
                "SELECT 1 FROM pg_locks WHERE pid = %s AND NOT granted", [pid]
            )
            if watcher.fetchone():
                return
            time.sleep(0.05)
        self.fail("the second transaction never waited for the first")
