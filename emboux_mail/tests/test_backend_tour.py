import json
import os
from urllib.parse import quote

from odoo.modules import get_module_path
from odoo.tests import HttpCase, tagged

from .common import FakeDns


@tagged("post_install", "-at_install")
class TestBackendTour(HttpCase):
    def setUp(self):
        super().setUp()
        # a customer without plan or key gets one mailbox per domain
        self.env["ir.config_parameter"].sudo().set_param(
            "emboux_mail.default_mailboxes_per_domain", "1"
        )

    def test_backend_tour(self):
        self.start_tour("/odoo", "emboux_mail_backend_tour", login="admin")

        customer = self.env["res.partner"].search([("name", "=", "Tour Customer")])
        self.assertEqual(len(customer), 1)
        self.assertTrue(customer.is_company)
        self.assertTrue(customer.emboux_partner_ref)
        domain = self.env["emboux.mail.domain"].search(
            [("name", "=", "tour-example.com")]
        )
        self.assertEqual(len(domain), 1)
        self.assertEqual(domain.partner_id, customer)
        mailboxes = self.env["emboux.mail.mailbox"].search(
            [("domain_id", "=", domain.id)]
        )
        self.assertEqual(mailboxes.mapped("email"), ["first@tour-example.com"])
        self.assertEqual(domain.mailbox_count, 1)
        self.assertTrue(mailboxes._emboux_check_password("Tour-Initial-Secret-1"))


@tagged("post_install", "-at_install")
class TestOperatorDay(FakeDns, HttpCase):
    """An operator's day in the backend, in English and in Spanish: one tour
    whose steps find elements by selectors, and the addon's texts it must
    show read from the translations loaded for the user's language."""

    def setUp(self):
        super().setUp()
        self.plan = self.env["emboux.mail.plan"].create(
            {"name": "Tour Plan", "domains_allowed": 2, "mailboxes_per_domain": 5}
        )

    def texts(self, lang):
        """The addon's texts the tour checks, as the user's language has
        them: the app's name and the Overview's."""
        env = self.env(context=dict(self.env.context, lang=lang))
        return {
            "app": env.ref("emboux_mail.menu_emboux_mail_root").name,
            "overview": env.ref("emboux_mail.emboux_mail_overview_action").name,
        }

    def run_operator_day(self, lang):
        """Run the tour as admin speaking ``lang``; check what it made."""
        self.env.ref("base.user_admin").lang = lang
        cookie = quote(json.dumps(self.texts(lang)))
        with self.fake_dns({}):
            self.start_tour(
                "/odoo",
                "emboux_mail_operator_tour",
                login="admin",
                cookies={"emboux_tour_texts": cookie},
            )
        customer = self.env["res.partner"].search([("name", "=", "Tour Customer")])
        self.assertEqual(len(customer), 1)
        self.assertTrue(customer.is_company)
        self.assertEqual(customer.emboux_plan_id, self.plan)
        domain = self.env["emboux.mail.domain"].search([("name", "=", "tour-day.com")])
        self.assertEqual(domain.partner_id, customer)
        self.assertFalse(domain.suspended)
        self.assertEqual(domain.dns_state, "error")
        self.assertEqual(
            self.env["emboux.mail.dns.health"]
            .search([("domain_id", "=", domain.id)])
            .state,
            "error",
        )
        mailbox = domain.mailbox_ids
        self.assertEqual(mailbox.email, "info@tour-day.com")
        self.env.cr.execute(
            "SELECT password_hash FROM emboux_mail_mailbox WHERE id = %s", [mailbox.id]
        )
        self.assertTrue(self.env.cr.fetchone()[0], "no password was generated")
        self.assertEqual(
            domain.alias_ids.mapped(lambda a: (a.source, a.destination)),
            [("sales@tour-day.com", "info@tour-day.com")],
        )
        # what the UI did is logged in the user's language
        logs = self.env["emboux.mail.security.log"].search(
            [("res_model", "=", domain._name), ("res_id", "=", domain.id)]
        )
        operator = domain.with_context(lang=lang)._emboux_label(
            "suspension_reason", "operator"
        )
        for event in ("domain_suspended", "domain_activated"):
            self.assertEqual(
                logs.filtered(lambda log, e=event: log.event == e).detail, operator
            )
        return operator

    def test_operator_day_in_english(self):
        self.assertEqual(self.run_operator_day("en_US"), "Operator")

    def test_operator_day_in_spanish(self):
        if not os.path.exists(
            os.path.join(get_module_path("emboux_mail"), "i18n", "es.po")
        ):
            self.skipTest("emboux_mail has no Spanish translation (i18n/es.po)")
        self.env["res.lang"]._activate_lang("es_ES")
        self.env["ir.module.module"]._load_module_terms(["emboux_mail"], ["es_ES"])
        english, spanish = self.texts("en_US"), self.texts("es_ES")
        self.assertNotEqual(spanish["app"], english["app"])
        operator = self.run_operator_day("es_ES")
        self.assertNotEqual(operator, "Operator")
