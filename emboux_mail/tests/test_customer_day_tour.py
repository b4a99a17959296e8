"""A customer's day on the portal in a real browser, in English and in
Spanish: a page that a form led to repeats nothing when it is reloaded, and
shows its secret once; destructive actions ask first, naming their object."""

from pathlib import Path
from unittest.mock import patch

from lxml import html

from odoo.http import request
from odoo.modules.module import get_module_path
from odoo.tests import tagged

from ..controllers.portal import EmbouxMailPortal
from .test_portal import EmbouxPortalCase

TOUR = "emboux_mail_customer_day_tour"
# texts of the portal's templates the Spanish run must show in Spanish:
# (template, its element, msgid, the Spanish expected from es.po); until
# emboux_mail has an es.po, the test gives the templates that Spanish itself
SPANISH = [
    (
        "emboux_mail.portal_my_email_domain",
        "o_emboux_mailbox_form",
        "New mailbox",
        "Nuevo buzón",
    ),
    (
        "emboux_mail.portal_my_email_keys",
        "o_emboux_key_form",
        "New API key",
        "Nueva clave API",
    ),
]


@tagged("post_install", "-at_install")
class TestCustomerDayTour(EmbouxPortalCase):
    def play(self):
        """Play the tour as Acme's portal user: the secrets its pages showed,
        in order, and the languages they were rendered in."""
        shown, langs = [], set()
        render = EmbouxMailPortal._emboux_render

        def recording(template, values, flash=None):
            if flash and flash.get("secret"):
                shown.append(flash["secret"]["value"])
            langs.add(request.env.lang)
            return render(template, values, flash)

        with patch.object(EmbouxMailPortal, "_emboux_render", staticmethod(recording)):
            self.start_tour("/my/email", TOUR, login=self.acme_user.login)
        return shown, langs

    def assertNothingRepeated(self, shown):
        """Each secret was shown once, and the reloads did nothing again:
        one new mailbox, whose password is the last one shown, one key,
        whose token is the one shown, and the alias deleted."""
        self.assertEqual(len(shown), 3, "two passwords and a token, each once")
        created, changed, token = shown
        mailbox = self.Mailbox.search([("email", "=", "day@acme.test")])
        self.assertEqual(len(mailbox), 1)
        self.assertTrue(mailbox._emboux_check_password(changed))
        self.assertFalse(mailbox._emboux_check_password(created))
        self.assertEqual(
            self.Mailbox.search_count([("domain_id", "=", self.domain.id)]), 2
        )
        self.assertFalse(self.alias.exists())
        key = self.Key.search([("name", "=", "Day key")])
        self.assertEqual(len(key), 1)
        self.assertEqual(self.Key._emboux_check_token(token), key)
        self.assertEqual(key.partner_id, self.acme)

    def spanish_terms(self):
        """{msgid: Spanish} of SPANISH, as loaded from emboux_mail's es.po,
        which must translate them; without an es.po yet, the expected
        Spanish is given to the templates here."""
        has_po = Path(get_module_path("emboux_mail"), "i18n", "es.po").is_file()
        terms = {}
        for xmlid, _css, msgid, expected in SPANISH:
            view = self.env.ref(xmlid)
            translations, _context = view.get_field_translations("arch_db", ["es_ES"])
            values = [t["value"] for t in translations if t["source"] == msgid]
            self.assertEqual(len(values), 1, f"{msgid!r} is a text of {xmlid}")
            if has_po:
                self.assertTrue(values[0], f"es.po translates {msgid!r}")
                terms[msgid] = values[0]
            else:
                view.update_field_translations("arch_db", {"es_ES": {msgid: expected}})
                terms[msgid] = expected
        return terms

    def test_customer_day_in_english(self):
        shown, langs = self.play()
        self.assertEqual(langs, {"en_US"})
        self.assertNothingRepeated(shown)

    def test_customer_day_in_spanish(self):
        self.env["res.lang"]._activate_lang("es_ES")
        self.env["ir.module.module"]._load_module_terms(
            ["web", "portal", "emboux_mail"], ["es_ES"]
        )
        spanish = self.spanish_terms()
        self.acme_user.lang = "es_ES"
        shown, langs = self.play()
        self.assertEqual(langs, {"es_ES"})
        self.assertNothingRepeated(shown)
        # the pages the tour went through are in Spanish
        self.login(self.acme_user)
        pages = [self.domain_url(), "/my/email/keys"]
        for url, (_xmlid, css, msgid, _expected) in zip(pages, SPANISH, strict=True):
            with self.subTest(url=url):
                page = self.url_open(url)
                self.assertEqual(page.status_code, 200)
                self.assertIn("/es/", page.url)
                title = html.fromstring(page.text).xpath(
                    f"//form[contains(@class, '{css}')]//h5"
                )[0]
                self.assertEqual(title.text_content().strip(), spanish[msgid])
                self.assertNotEqual(spanish[msgid], msgid)
