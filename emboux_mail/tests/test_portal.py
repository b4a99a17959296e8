"""The customer portal at /my/email: every route as the tenant's portal user,
as another tenant's portal user and as an anonymous visitor, and a tour."""

import logging
import time
from types import SimpleNamespace
from unittest.mock import patch

from lxml import html

from odoo import Command, http
from odoo.http import Request
from odoo.tests import HttpCase, tagged

from ..controllers import portal
from ..controllers.portal import FLASH_KEPT, FLASH_KEY, FLASH_LIFETIME
from .common import EmbouxHostingSetup

_logger = logging.getLogger(__name__)


class EmbouxPortalCase(EmbouxHostingSetup, HttpCase):
    """Two tenants, Acme and Globex, each with a portal user (a contact of
    the company), a domain with a mailbox and an alias, and an API key."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_hosting(
            domains_allowed=5, mailboxes_per_domain=3, aliases_per_mailbox=2
        )
        cls.acme, cls.acme_user = cls.make_tenant_user("Acme", "acme_portal")
        cls.globex, cls.globex_user = cls.make_tenant_user("Globex", "globex_portal")
        cls.domain, cls.mailbox, cls.alias, cls.key = cls.make_hosting(
            cls.acme, "acme.test"
        )
        cls.other_domain, cls.other_mailbox, cls.other_alias, cls.other_key = (
            cls.make_hosting(cls.globex, "globex.test")
        )

    @classmethod
    def make_tenant_user(cls, name, login, plan=None, tenant=True):
        """A company (a tenant unless ``tenant`` is false) and a portal user
        whose partner is a contact of it; the password is the login."""
        company = cls.env["res.partner"].create(
            {
                "name": name,
                "is_company": True,
                "emboux_plan_id": (plan or cls.plan).id,
                "emboux_partner_ref": f"partner_{login}" if tenant else False,
            }
        )
        contact = cls.env["res.partner"].create(
            {"name": f"{name} contact", "parent_id": company.id, "email": login}
        )
        user = (
            cls.env["res.users"]
            .with_context(no_reset_password=True)
            .create(
                {
                    "login": login,
                    "password": login,
                    "partner_id": contact.id,
                    "groups_id": [Command.set([cls.env.ref("base.group_portal").id])],
                }
            )
        )
        return company, user

    @classmethod
    def make_hosting(cls, tenant, name):
        domain = cls.Domain.create({"name": name, "partner_id": tenant.id})
        mailbox = cls.Mailbox.create(
            {"email": f"info@{name}", "password": "Initial-Secret-1"}
        )
        alias = cls.Alias.create(
            {"source": f"contact@{name}", "destination": f"info@{name}"}
        )
        key, _token = cls.Key._emboux_generate(
            {"name": f"{tenant.name} shop", "partner_id": tenant.id}
        )
        return domain, mailbox, alias, key

    # -- helpers --------------------------------------------------------------
    def login(self, user):
        self.authenticate(user.login, user.login)

    def get(self, url):
        return self.url_open(url, allow_redirects=False)

    def post(self, url, data=None, csrf=True):
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf_token", Request.csrf_token(self))
        # a non-empty body, so that url_open posts
        data.setdefault("submitted", "1")
        return self.url_open(url, data=data, allow_redirects=False)

    def follow(self, response):
        """The page a 303 of the portal leads to."""
        self.assertEqual(response.status_code, 303, response.text[:2000])
        return self.url_open(response.headers["Location"], allow_redirects=False)

    def flashes(self):
        """The one-time messages waiting in the session for their page."""
        session = http.root.session_store.get(self.session.sid)
        return session.get(FLASH_KEY) or {}

    @staticmethod
    def texts(response, css_class):
        tree = html.fromstring(response.text)
        return [
            " ".join(node.text_content().split())
            for node in tree.xpath(f"//*[contains(@class, '{css_class}')]")
        ]

    def secret_of(self, response):
        tree = html.fromstring(response.text)
        values = tree.xpath("//input[contains(@class, 'o_emboux_secret_value')]/@value")
        self.assertEqual(len(values), 1, "the page shows one secret")
        return values[0]

    def assertError(self, response, status, *fragments):
        """The form's answer leads to its page, which answers ``status`` and
        shows a message holding each of ``fragments``, never a traceback.
        Returns that page."""
        page = self.follow(response)
        self.assertEqual(page.status_code, status, page.text[:2000])
        errors = self.texts(page, "o_emboux_error")
        self.assertEqual(len(errors), 1, page.text[:2000])
        for fragment in fragments:
            self.assertIn(fragment, errors[0])
        self.assertNotIn("Traceback", page.text)
        return page

    def domain_url(self, domain=None, tail=""):
        return f"/my/email/domain/{(domain or self.domain).id}{tail}"


@tagged("post_install", "-at_install")
class TestPortal(EmbouxPortalCase):
    # -- home and lists -------------------------------------------------------
    def test_home_entry_and_counters(self):
        self.login(self.acme_user)
        page = self.get("/my/home")
        self.assertEqual(page.status_code, 200)
        self.assertIn('data-placeholder_count="emboux_domain_count"', page.text)
        self.assertIn('href="/my/email"', page.text)
        self.assertIn('href="/my/email/keys"', page.text)
        counters = self.make_jsonrpc_request(
            "/my/counters",
            {"counters": ["emboux_domain_count", "emboux_api_key_count"]},
        )
        self.assertEqual(
            counters, {"emboux_domain_count": 1, "emboux_api_key_count": 1}
        )
        # only what is asked is counted
        self.assertEqual(
            self.make_jsonrpc_request("/my/counters", {"counters": []}), {}
        )

    def test_domains_list(self):
        second = self.Domain.create(
            {"name": "acme-shop.test", "partner_id": self.acme.id}
        )
        second.action_suspend()
        self.domain.sudo().dns_state = "ok"
        self.login(self.acme_user)
        page = self.get("/my/email")
        self.assertEqual(page.status_code, 200)
        rows = self.texts(page, "o_emboux_domain_row")
        self.assertEqual(len(rows), 2)
        acme_row = next(row for row in rows if row.startswith("acme.test"))
        shop_row = next(row for row in rows if row.startswith("acme-shop.test"))
        self.assertIn("1 / 3", acme_row)
        self.assertIn("Healthy", acme_row)
        self.assertIn("Active", acme_row)
        self.assertIn("0 / 3", shop_row)
        self.assertIn("Not checked", shop_row)
        self.assertIn("Suspended", shop_row)
        self.assertNotIn("globex.test", page.text)
        self.assertIn(f'href="/my/email/domain/{self.domain.id}"', page.text)

    def test_domains_list_pager(self):
        self.plan.domains_allowed = 0
        self.Domain.create(
            [{"name": f"d{n}.acme.test", "partner_id": self.acme.id} for n in range(81)]
        )
        self.login(self.acme_user)
        first = self.get("/my/email")
        self.assertEqual(len(self.texts(first, "o_emboux_domain_row")), 80)
        self.assertIn('href="/my/email/page/2"', first.text)
        second = self.get("/my/email/page/2")
        self.assertEqual(len(self.texts(second, "o_emboux_domain_row")), 2)

    def test_domain_page(self):
        self.login(self.acme_user)
        page = self.get(self.domain_url())
        self.assertEqual(page.status_code, 200)
        self.assertEqual(self.texts(page, "o_emboux_quota"), ["1 / 3 mailboxes"])
        self.assertEqual(
            self.texts(page, "o_emboux_mailbox_row"),
            ["info@acme.test 0.0 MB of 500 MB (0.0 %) Password Delete"],
        )
        self.assertEqual(
            self.texts(page, "o_emboux_alias_row"),
            ["contact@acme.test info@acme.test Delete"],
        )
        # breadcrumbs: home / Email / the domain
        crumbs = self.texts(page, "breadcrumb-item")
        self.assertEqual(crumbs[1:], ["Email", "acme.test"])
        # never checked: the records to publish, with values to copy
        dns = self.texts(page, "o_emboux_dns_row")
        self.assertEqual(len(dns), 4)
        self.assertIn("MX acme.test mx1.emboux.com Not checked", dns)
        self.assertIn(
            "TXT SPF acme.test v=spf1 include:emboux.com ~all Not checked", dns
        )
        self.assertIn("TXT DMARC _dmarc.acme.test v=DMARC1; p=none Not checked", dns)
        self.assertIn('data-copy="v=spf1 include:emboux.com ~all"', page.text)
        self.assertIn('data-copy="_dmarc.acme.test"', page.text)
        # forms carry the CSRF token
        tree = html.fromstring(page.text)
        forms = tree.xpath("//form[@method='post']")
        # new mailbox, new alias, limits, retention
        self.assertEqual(len(forms), 4)
        for form in forms:
            self.assertTrue(form.xpath(".//input[@name='csrf_token']/@value"))
        # deletes lead to their confirmation, and ask first, naming the object
        asks = {
            link.get("href"): link.get("data-emboux-ask")
            for link in tree.xpath("//a[@data-emboux-ask]")
        }
        self.assertEqual(
            asks,
            {
                self.domain_url(
                    tail=f"/mailbox/{self.mailbox.id}/delete"
                ): "Delete the mailbox info@acme.test?",
                self.domain_url(
                    tail=f"/alias/{self.alias.id}/delete"
                ): "Delete the alias contact@acme.test?",
            },
        )

    def test_domain_page_shows_last_dns_check(self):
        self.env["emboux.mail.dns.record"].create(
            [
                {
                    "domain_id": self.domain.id,
                    "sequence": 0,
                    "record_type": "MX",
                    "kind": "MX",
                    "name": "acme.test",
                    "expected": "mx1.emboux.com",
                    "found": "mx.elsewhere.test",
                    "status": "incorrect",
                },
                {
                    "domain_id": self.domain.id,
                    "sequence": 1,
                    "record_type": "TXT",
                    "kind": "DKIM",
                    "name": "emboux._domainkey.acme.test",
                    "expected": "v=DKIM1",
                    "status": "missing",
                },
            ]
        )
        self.domain.write(
            {"dns_state": "error", "dns_checked_at": "2026-01-02 03:04:05"}
        )
        self.login(self.acme_user)
        page = self.get(self.domain_url())
        dns = self.texts(page, "o_emboux_dns_row")
        self.assertEqual(len(dns), 2)
        self.assertIn("Found: mx.elsewhere.test", dns[0])
        self.assertIn("Incorrect", dns[0])
        self.assertIn("Missing", dns[1])
        self.assertIn("The DKIM key of your mail server", dns[1])
        self.assertIn("Failing", page.text)
        self.assertIn("Last checked on", page.text)

    # -- mailboxes ------------------------------------------------------------
    def test_create_mailbox_with_typed_password(self):
        self.login(self.acme_user)
        secret = "Typed-Secret-2026"
        response = self.post(
            self.domain_url(tail="/mailbox/new"),
            {
                "local_part": "Sales",
                "password": secret,
                "password_confirm": secret,
            },
        )
        page = self.follow(response)
        self.assertNotIn(secret, response.headers["Location"])
        mailbox = self.Mailbox.search([("email", "=", "sales@acme.test")])
        self.assertTrue(mailbox._emboux_check_password(secret))
        self.assertEqual(
            self.texts(page, "o_emboux_done"), ["Mailbox sales@acme.test created."]
        )
        self.assertEqual(self.texts(page, "o_emboux_quota"), ["2 / 3 mailboxes"])
        self.assertNotIn(secret, page.text)
        self.assertEqual(mailbox.quota_mb, 500)
        self.assertNotStoredAnywhere(secret)

    def test_create_mailbox_with_generated_password(self):
        self.login(self.acme_user)
        response = self.post(
            self.domain_url(tail="/mailbox/new"),
            {"local_part": "office@acme.test", "generate": "1"},
        )
        location = response.headers["Location"]
        self.assertTrue(location.startswith(self.domain_url() + "?flash="), location)
        # until its page is opened, the password waits in the session only
        [waiting] = self.flashes().values()
        secret = waiting["secret"]["value"]
        self.assertNotIn(secret, location)
        page = self.follow(response)
        self.assertEqual(page.status_code, 200)
        self.assertEqual(page.headers.get("Cache-Control"), "no-store")
        self.assertEqual(self.secret_of(page), secret)
        self.assertGreaterEqual(len(secret), 16)
        self.assertEqual(
            self.texts(page, "o_emboux_done"), ["Mailbox office@acme.test created."]
        )
        mailbox = self.Mailbox.search([("email", "=", "office@acme.test")])
        self.assertTrue(mailbox._emboux_check_password(secret))
        self.assertNotStoredAnywhere(secret)
        self.assertFalse(self.flashes(), "shown, it left the session")
        # shown once: a reload of its page shows it no more, and does nothing
        again = self.get(location)
        self.assertEqual(again.status_code, 200)
        self.assertNotIn(secret, again.text)
        self.assertFalse(self.texts(again, "o_emboux_done"))
        self.assertTrue(mailbox._emboux_check_password(secret))
        self.assertEqual(self.domain.mailbox_count, 2)

    def test_create_mailbox_refuses_bad_passwords(self):
        self.login(self.acme_user)
        url = self.domain_url(tail="/mailbox/new")
        cases = [
            ("", "", "Type a password twice"),
            ("Abcdef-12345", "Abcdef-12346", "not the same"),
            ("short1", "short1", "at least 10 characters"),
            ("tab\tin-the-middle", "tab\tin-the-middle", "control characters"),
            ("x" * 1025, "x" * 1025, "at most 1024 bytes"),
            ("sales-2026-sales", "sales-2026-sales", "must not contain"),
        ]
        for password, confirm, message in cases:
            with self.subTest(message=message):
                response = self.post(
                    url,
                    {
                        "local_part": "sales",
                        "password": password,
                        "password_confirm": confirm,
                    },
                )
                self.assertNotIn("password", response.headers["Location"])
                page = self.assertError(response, 422, message)
                if password:
                    self.assertNotIn(password, page.text)
                    self.assertNotIn(confirm, page.text)
                # the address typed is kept, the passwords are not
                tree = html.fromstring(page.text)
                self.assertEqual(
                    tree.xpath("//input[@name='local_part']/@value"), ["sales"]
                )
                self.assertFalse(tree.xpath("//input[@type='password']/@value"))
        self.assertFalse(self.Mailbox.search([("email", "=", "sales@acme.test")]))

    def test_create_mailbox_shows_the_rules_messages(self):
        self.login(self.acme_user)
        url = self.domain_url(tail="/mailbox/new")
        data = {"password": "Good-Secret-123", "password_confirm": "Good-Secret-123"}
        self.assertError(
            self.post(url, {**data, "local_part": "bad name"}), 422, "is not valid"
        )
        self.assertError(
            self.post(url, {**data, "local_part": "info"}),
            400,
            "the mailbox 'info@acme.test' already exists",
        )
        self.assertEqual(
            self.follow(self.post(url, {**data, "local_part": "b"})).status_code, 200
        )
        self.assertEqual(
            self.follow(self.post(url, {**data, "local_part": "c"})).status_code, 200
        )
        page = self.assertError(
            self.post(url, {**data, "local_part": "d"}),
            403,
            "Domain acme.test: mailbox quota exceeded (3 of 3 mailboxes used).",
        )
        self.assertEqual(self.texts(page, "o_emboux_quota"), ["3 / 3 mailboxes"])
        # what was typed is given back once: not on a reload
        again = self.get(self.domain_url())
        self.assertFalse(self.texts(again, "o_emboux_error"))
        tree = html.fromstring(again.text)
        self.assertFalse(tree.xpath("//input[@name='local_part']/@value"))
        self.assertEqual(self.domain.mailbox_count, 3)
        self.assertFalse(self.Mailbox.search([("email", "=", "d@acme.test")]))

    def test_change_password(self):
        self.login(self.acme_user)
        url = self.domain_url(tail=f"/mailbox/{self.mailbox.id}/password")
        form = self.get(url)
        self.assertEqual(form.status_code, 200)
        self.assertIn("New password for info@acme.test", " ".join(form.text.split()))
        self.assertEqual(
            self.texts(form, "breadcrumb-item")[1:],
            ["Email", "acme.test", "Change password"],
        )
        self.assertError(
            self.post(url, {"password": "Changed-Secret-1", "password_confirm": "x"}),
            422,
            "not the same",
        )
        self.assertTrue(self.mailbox._emboux_check_password("Initial-Secret-1"))
        page = self.follow(
            self.post(
                url,
                {
                    "password": "Changed-Secret-1",
                    "password_confirm": "Changed-Secret-1",
                },
            )
        )
        self.assertEqual(
            self.texts(page, "o_emboux_done"),
            ["The password of info@acme.test was changed."],
        )
        self.assertTrue(self.mailbox._emboux_check_password("Changed-Secret-1"))
        self.assertNotIn("Changed-Secret-1", page.text)
        # the form asks first, naming the mailbox
        [form] = html.fromstring(form.text).xpath("//form[@data-emboux-ask]")
        self.assertEqual(
            form.get("data-emboux-ask"), "Change the password of info@acme.test?"
        )
        # a generated one is shown once, on the domain's page
        response = self.post(url, {"generate": "1"})
        location = response.headers["Location"]
        self.assertTrue(location.startswith(self.domain_url() + "?flash="), location)
        page = self.follow(response)
        secret = self.secret_of(page)
        self.assertTrue(self.mailbox._emboux_check_password(secret))
        self.assertNotStoredAnywhere(secret)
        self.assertNotIn(secret, self.get(location).text)
        self.assertTrue(self.mailbox._emboux_check_password(secret))

    def test_delete_mailbox_after_confirmation(self):
        self.login(self.acme_user)
        url = self.domain_url(tail=f"/mailbox/{self.mailbox.id}/delete")
        confirm = self.get(url)
        self.assertEqual(confirm.status_code, 200)
        self.assertEqual(
            self.texts(confirm, "o_emboux_confirm_question"),
            ["Delete the mailbox info@acme.test?"],
        )
        self.assertEqual(
            self.texts(confirm, "breadcrumb-item")[1:],
            ["Email", "acme.test", "Delete the mailbox"],
        )
        [form] = html.fromstring(confirm.text).xpath("//form[@method='post']")
        self.assertEqual(form.get("action"), url)
        self.assertTrue(form.xpath(".//input[@name='csrf_token']/@value"))
        self.assertTrue(self.mailbox.exists(), "asking is not deleting")
        page = self.follow(self.post(url))
        self.assertFalse(self.mailbox.exists())
        self.assertEqual(
            self.texts(page, "o_emboux_done"), ["Mailbox info@acme.test deleted."]
        )
        self.assertEqual(self.texts(page, "o_emboux_quota"), ["0 / 3 mailboxes"])
        self.assertEqual(self.post(url).status_code, 404)
        self.assertEqual(self.get(url).status_code, 404)

    # -- aliases --------------------------------------------------------------
    def test_add_and_delete_alias(self):
        self.login(self.acme_user)
        url = self.domain_url(tail="/alias/new")
        page = self.follow(
            self.post(
                url, {"alias_local_part": "Sales", "destination": "Info@Acme.test"}
            )
        )
        alias = self.Alias.search([("source", "=", "sales@acme.test")])
        self.assertEqual(alias.destination, "info@acme.test")
        self.assertEqual(
            self.texts(page, "o_emboux_done"), ["Alias sales@acme.test created."]
        )
        # the destination already has 2 aliases (the plan's quota)
        self.assertError(
            self.post(
                url, {"alias_local_part": "more", "destination": "info@acme.test"}
            ),
            403,
            "alias quota exceeded (2 of 2 aliases already point at it)",
        )
        catch_all = self.follow(
            self.post(url, {"catch_all": "1", "destination": "boss@elsewhere.test"})
        )
        self.assertIn(
            "Catch-all", " ".join(self.texts(catch_all, "o_emboux_alias_row"))
        )
        self.assertTrue(self.Alias.search([("source", "=", "@acme.test")]))
        self.assertError(
            self.post(url, {"destination": "boss@elsewhere.test"}),
            422,
            "Type the address",
        )
        self.assertError(
            self.post(url, {"alias_local_part": "x", "destination": "not an address"}),
            422,
            "Destination",
        )
        self.assertError(
            self.post(url, {"alias_local_part": "contact", "destination": "a@b.test"}),
            400,
            "already exists",
        )
        delete = self.domain_url(tail=f"/alias/{alias.id}/delete")
        # a GET of the delete asks, naming the alias
        confirm = self.get(delete)
        self.assertEqual(confirm.status_code, 200)
        self.assertEqual(
            self.texts(confirm, "o_emboux_confirm_question"),
            ["Delete the alias sales@acme.test?"],
        )
        self.assertTrue(alias.exists(), "asking is not deleting")
        page = self.follow(self.post(delete))
        self.assertFalse(alias.exists())
        self.assertEqual(
            self.texts(page, "o_emboux_done"), ["Alias sales@acme.test deleted."]
        )
        self.assertEqual(self.get(delete).status_code, 404)

    # -- suspension -----------------------------------------------------------
    def test_suspended_domain_refuses_additions_but_not_deletes(self):
        self.domain.action_suspend()
        self.login(self.acme_user)
        page = self.get(self.domain_url())
        self.assertEqual(page.status_code, 200)
        self.assertIn("This domain is suspended", page.text)
        tree = html.fromstring(page.text)
        # no form to add anything, no password link; deletes stay
        self.assertFalse(tree.xpath("//form[contains(@action, '/new')]"))
        self.assertFalse(tree.xpath("//a[contains(@href, '/password')]"))
        self.assertTrue(tree.xpath("//a[contains(@href, '/delete')]"))
        password = {
            "password": "Good-Secret-123",
            "password_confirm": "Good-Secret-123",
        }
        mailbox = f"/mailbox/{self.mailbox.id}"
        refused = [
            ("/mailbox/new", {"local_part": "new", **password}),
            (f"{mailbox}/password", password),
            ("/alias/new", {"alias_local_part": "new", "destination": "a@b.test"}),
        ]
        for tail, data in refused:
            with self.subTest(tail=tail):
                self.assertError(
                    self.post(self.domain_url(tail=tail), data),
                    403,
                    "The domain acme.test is suspended",
                )
        self.assertEqual(self.domain.mailbox_count, 1)
        self.assertTrue(self.mailbox._emboux_check_password("Initial-Secret-1"))
        self.assertFalse(self.Alias.search([("source", "=", "new@acme.test")]))
        # deletes still work on a suspended domain
        for tail in (f"/alias/{self.alias.id}/delete", f"{mailbox}/delete"):
            response = self.post(self.domain_url(tail=tail), {})
            self.assertEqual(response.status_code, 303, response.text[:300])
        self.assertFalse(self.alias.exists())
        self.assertFalse(self.mailbox.exists())

    # -- API keys -------------------------------------------------------------
    def test_api_keys(self):
        self.key.last_used_at = "2026-03-04 05:06:07"
        master = self.Key.create(
            {"name": "Master", "is_master": True, "token": "m" * 20}
        )
        self.login(self.acme_user)
        page = self.get("/my/email/keys")
        self.assertEqual(page.status_code, 200)
        rows = self.texts(page, "o_emboux_key_row")
        self.assertEqual(len(rows), 1)
        self.assertIn("Acme shop", rows[0])
        self.assertIn("03/04/2026", rows[0])
        self.assertIn("Active", rows[0])
        self.assertNotIn("Globex shop", page.text)
        self.assertIn("partner_acme_portal", page.text)

        response = self.post("/my/email/keys/new", {"name": "Billing app"})
        page = self.follow(response)
        self.assertEqual(page.status_code, 200)
        self.assertEqual(page.headers.get("Cache-Control"), "no-store")
        self.assertEqual(
            self.texts(page, "o_emboux_done"), ["API key Billing app created."]
        )
        token = self.secret_of(page)
        self.assertNotIn(token, response.headers["Location"])
        key = self.Key._emboux_check_token(token)
        self.assertEqual((key.name, key.partner_id), ("Billing app", self.acme))
        self.assertFalse(key.quota_override)
        self.assertEqual(key.mailboxes_per_domain, 3)
        self.assertNotStoredAnywhere(token)
        # a reload of its page shows it no more, and makes no other key
        self.assertNotIn(token, self.get(response.headers["Location"]).text)
        self.assertNotIn(token, self.get("/my/email/keys").text)
        self.assertEqual(self.Key.search_count([("name", "=", "Billing app")]), 1)
        page = self.assertError(
            self.post("/my/email/keys/new", {"name": " "}), 422, "Name the key"
        )
        self.assertFalse(self.texts(page, "o_emboux_secret"))

        revoke = f"/my/email/keys/{key.id}/revoke"
        row = next(
            link
            for link in html.fromstring(page.text).xpath("//a[@data-emboux-ask]")
            if link.get("href") == revoke
        )
        self.assertEqual(row.get("data-emboux-ask"), "Revoke the API key Billing app?")
        confirm = self.get(revoke)
        self.assertEqual(
            self.texts(confirm, "o_emboux_confirm_question"),
            ["Revoke the API key Billing app?"],
        )
        self.assertTrue(key.active, "asking is not revoking")
        page = self.follow(self.post(revoke))
        self.assertFalse(key.active)
        self.assertEqual(
            self.texts(page, "o_emboux_done"), ["API key Billing app revoked."]
        )
        revoked = next(
            r for r in self.texts(page, "o_emboux_key_row") if "Billing" in r
        )
        self.assertIn("Revoked", revoked)
        self.assertEqual(
            self.post(f"/my/email/keys/{master.id}/revoke").status_code, 404
        )
        self.assertTrue(master.active)

    def test_new_key_never_loosens_the_operators_quotas(self):
        self.key.write({"quota_override": True, "mailboxes_per_domain": 1})
        self.login(self.acme_user)
        token = self.secret_of(
            self.follow(self.post("/my/email/keys/new", {"name": "Second"}))
        )
        key = self.Key._emboux_check_token(token)
        self.assertEqual(key.mailboxes_per_domain, 1)
        self.assertEqual(self.acme._emboux_limits()["mailboxes_per_domain"], 1)

    def test_keys_need_a_tenant(self):
        _company, user = self.make_tenant_user(
            "Initech", "initech_portal", tenant=False
        )
        self.login(user)
        page = self.get("/my/email/keys")
        self.assertIn("has no mail hosting", page.text)
        self.assertFalse(html.fromstring(page.text).xpath("//form[@method='post']"))
        self.assertError(
            self.post("/my/email/keys/new", {"name": "Sneaky"}), 403, "no mail hosting"
        )
        self.assertFalse(self.Key.search([("name", "=", "Sneaky")]))
        self.assertFalse(self.texts(self.get("/my/email"), "o_emboux_domain_row"))

    # -- post/redirect/get ----------------------------------------------------
    def test_every_form_leads_to_a_page(self):
        """Each form is answered by a 303 to a page, which a reload only
        reads; its message is shown once."""
        self.login(self.acme_user)
        domain = self.domain_url()
        mailbox = f"{domain}/mailbox/{self.mailbox.id}"
        password = {
            "password": "Good-Secret-123",
            "password_confirm": "Good-Secret-123",
        }
        forms = [
            ("/my/email/domain/new", {"name": "prg.test"}, None),
            (f"{domain}/sending", {"outbound_daily_limit": "1"}, domain),
            (f"{domain}/retention", {"retention_days": "0"}, domain),
            (f"{domain}/mailbox/new", {"local_part": "prg", **password}, domain),
            (f"{mailbox}/password", password, domain),
            (
                f"{domain}/alias/new",
                {"alias_local_part": "prg", "destination": "a@b.test"},
                domain,
            ),
            (f"{domain}/alias/{self.alias.id}/delete", {}, domain),
            ("/my/email/keys/new", {"name": "PRG"}, "/my/email/keys"),
            (f"/my/email/keys/{self.key.id}/revoke", {}, "/my/email/keys"),
            (f"{mailbox}/delete", {}, domain),
        ]
        for url, data, page_url in forms:
            with self.subTest(url=url):
                response = self.post(url, data)
                self.assertEqual(response.status_code, 303, response.text[:2000])
                location = response.headers["Location"]
                path, _sep, query = location.partition("?")
                self.assertTrue(query.startswith("flash="), location)
                if page_url:
                    self.assertEqual(path, page_url)
                page = self.follow(response)
                self.assertEqual(page.status_code, 200, page.text[:2000])
                self.assertEqual(len(self.texts(page, "o_emboux_done")), 1)
                again = self.get(location)
                self.assertEqual(again.status_code, 200)
                self.assertFalse(self.texts(again, "o_emboux_done"))
        self.assertFalse(self.flashes())

    def test_a_get_of_a_form_address_is_a_page(self):
        """No bare 405: a form's address opened with a GET leads to the page
        of its form, saying nothing was changed; a destructive action's is
        its confirmation page."""
        self.login(self.acme_user)
        domain = self.domain_url()
        for url, page_url in (
            ("/my/email/domain/new", "/my/email"),
            (f"{domain}/verify", domain),
            (f"{domain}/sending", domain),
            (f"{domain}/retention", domain),
            (f"{domain}/mailbox/new", domain),
            (f"{domain}/alias/new", domain),
            ("/my/email/keys/new", "/my/email/keys"),
        ):
            with self.subTest(url=url):
                response = self.get(url)
                self.assertEqual(response.status_code, 303)
                self.assertEqual(response.headers["Location"].split("?")[0], page_url)
                page = self.follow(response)
                self.assertEqual(page.status_code, 200)
                self.assertEqual(
                    self.texts(page, "o_emboux_note"),
                    ["This address takes this page's forms only: nothing was changed."],
                )
        for url, question in (
            (
                f"{domain}/mailbox/{self.mailbox.id}/delete",
                "Delete the mailbox info@acme.test?",
            ),
            (
                f"{domain}/alias/{self.alias.id}/delete",
                "Delete the alias contact@acme.test?",
            ),
            (f"/my/email/keys/{self.key.id}/revoke", "Revoke the API key Acme shop?"),
        ):
            with self.subTest(url=url):
                page = self.get(url)
                self.assertEqual(page.status_code, 200)
                self.assertEqual(
                    self.texts(page, "o_emboux_confirm_question"), [question]
                )
        self.assertAcmeUnchanged()
        self.assertEqual(self.domain.retention_days, 0)

    def test_one_time_messages_are_few_and_short_lived(self):
        """Pages never opened leave at most FLASH_KEPT messages waiting, the
        newest; one that waited too long is shown no more."""
        self.login(self.acme_user)
        url = self.domain_url(tail="/retention")
        answers = [self.post(url, {"retention_days": str(days)}) for days in range(12)]
        self.assertEqual(len(self.flashes()), FLASH_KEPT)
        self.assertFalse(self.texts(self.follow(answers[0]), "o_emboux_done"))
        self.assertEqual(len(self.texts(self.follow(answers[-1]), "o_emboux_done")), 1)
        # waiting too long, a message is dropped
        late = self.post(url, {"retention_days": "7"})
        later = time.time() + FLASH_LIFETIME
        with patch.object(portal, "time", SimpleNamespace(time=lambda: later)):
            self.assertFalse(self.texts(self.follow(late), "o_emboux_done"))
            self.post(url, {"retention_days": "8"})
        self.assertEqual(len(self.flashes()), 1, "the others were dropped")

    # -- isolation ------------------------------------------------------------
    def _foreign_routes(self):
        """(method, url) of every route, on Acme's records."""
        domain = self.domain_url()
        mailbox = f"{domain}/mailbox/{self.mailbox.id}"
        return [
            ("GET", domain),
            ("POST", f"{domain}/mailbox/new"),
            ("GET", f"{mailbox}/password"),
            ("POST", f"{mailbox}/password"),
            ("GET", f"{mailbox}/delete"),
            ("POST", f"{mailbox}/delete"),
            ("POST", f"{domain}/alias/new"),
            ("GET", f"{domain}/alias/{self.alias.id}/delete"),
            ("POST", f"{domain}/alias/{self.alias.id}/delete"),
            ("GET", f"/my/email/keys/{self.key.id}/revoke"),
            ("POST", f"/my/email/keys/{self.key.id}/revoke"),
        ]

    def _request(self, method, url):
        data = {
            "local_part": "intruder",
            "alias_local_part": "intruder",
            "destination": "intruder@evil.test",
            "password": "Intruder-Secret-1",
            "password_confirm": "Intruder-Secret-1",
            "name": "Intruder",
        }
        return self.get(url) if method == "GET" else self.post(url, data)

    def assertAcmeUnchanged(self):
        self.assertEqual(self.domain.mailbox_count, 1)
        self.assertTrue(self.mailbox._emboux_check_password("Initial-Secret-1"))
        self.assertTrue(self.alias.exists())
        self.assertTrue(self.key.active)
        self.assertFalse(self.Alias.search([("source", "=like", "intruder@%")]))

    def test_other_tenant_gets_404(self):
        self.login(self.globex_user)
        for method, url in self._foreign_routes():
            with self.subTest(method=method, url=url):
                self.assertEqual(self._request(method, url).status_code, 404)
        # Globex's own domain with Acme's mailbox and alias
        other = self.domain_url(self.other_domain)
        for url in (
            f"{other}/mailbox/{self.mailbox.id}/password",
            f"{other}/mailbox/{self.mailbox.id}/delete",
        ):
            self.assertEqual(self.get(url).status_code, 404)
            self.assertEqual(self._request("POST", url).status_code, 404)
        url = f"{other}/alias/{self.alias.id}/delete"
        self.assertEqual(self.get(url).status_code, 404)
        self.assertEqual(self._request("POST", url).status_code, 404)
        # a form's address opened with a GET leads to its page: not theirs
        page = self.follow(self.get(self.domain_url(tail="/mailbox/new")))
        self.assertEqual(page.status_code, 404)
        self.assertEqual(self.get("/my/email/domain/999999999").status_code, 404)
        self.assertAcmeUnchanged()
        self.assertNotIn("acme.test", self.get("/my/email").text)
        self.assertNotIn("Acme shop", self.get("/my/email/keys").text)

    def test_record_rules_alone_hide_other_tenants(self):
        env = self.env(user=self.globex_user)
        for model in (
            "emboux.mail.domain",
            "emboux.mail.mailbox",
            "emboux.mail.alias",
            "emboux.mail.api.key",
        ):
            records = env[model].with_context(active_test=False).search([])
            self.assertEqual(records.partner_id, self.globex, model)
        self.env["emboux.mail.dns.record"].create(
            {
                "domain_id": self.domain.id,
                "record_type": "MX",
                "kind": "MX",
                "name": "acme.test",
            }
        )
        self.assertFalse(env["emboux.mail.dns.record"].search([]))
        self.assertFalse(env["emboux.mail.domain"].has_access("write"))

    def test_employee_sees_only_own_company_hosting(self):
        """The controllers scope to the user's commercial partner even when
        access rights would show more (an operator)."""
        self.authenticate("admin", "admin")
        self.assertNotIn("acme.test", self.get("/my/email").text)
        self.assertEqual(self.get(self.domain_url()).status_code, 404)

    def test_anonymous_is_sent_to_login(self):
        self.authenticate(None, None)  # a visitor's session, with a CSRF token
        routes = [
            *self._foreign_routes(),
            ("GET", "/my/email"),
            ("GET", "/my/email/keys"),
            ("POST", "/my/email/keys/new"),
        ]
        for method, url in routes:
            with self.subTest(method=method, url=url):
                response = self._request(method, url)
                self.assertEqual(response.status_code, 303)
                self.assertIn("/web/login", response.headers["Location"])
        self.assertAcmeUnchanged()
        self.assertFalse(self.Key.search([("name", "=", "Intruder")]))

    def test_forms_need_the_csrf_token(self):
        self.login(self.acme_user)
        data = {"alias_local_part": "nocsrf", "destination": "info@acme.test"}
        with self.assertLogs("odoo.http", "WARNING"):
            response = self.post(self.domain_url(tail="/alias/new"), data, csrf=False)
        self.assertEqual(response.status_code, 400)
        with self.assertLogs("odoo.http", "WARNING"):
            response = self.post(
                self.domain_url(tail="/alias/new"), {**data, "csrf_token": "forged"}
            )
        self.assertEqual(response.status_code, 400)
        self.assertFalse(self.Alias.search([("source", "=", "nocsrf@acme.test")]))

    # -- queries --------------------------------------------------------------
    def test_queries_do_not_grow_with_mailboxes(self):
        """Every page costs the same number of queries, plus a constant, for
        a domain with 2 mailboxes and 2 aliases and one with 200 of each."""
        unlimited = self.plan.copy(
            {"mailboxes_per_domain": 0, "aliases_per_mailbox": 0}
        )
        pages = {}
        for size in (2, 200):
            tenant, user = self.make_tenant_user(
                f"Size{size}", f"size{size}", unlimited
            )
            domain = self.Domain.create(
                {"name": f"size{size}.test", "partner_id": tenant.id}
            )
            mailboxes = self.Mailbox.create(
                [{"email": f"user{n}@size{size}.test"} for n in range(size)]
            )
            self.Alias.create(
                [
                    {
                        "source": f"alias{n}@size{size}.test",
                        "destination": mailbox.email,
                    }
                    for n, mailbox in enumerate(mailboxes)
                ]
            )
            base = f"/my/email/domain/{domain.id}"
            urls = {
                "list": "/my/email",
                "domain": base,
                "password": f"{base}/mailbox/{mailboxes[0].id}/password",
                "delete": f"{base}/mailbox/{mailboxes[0].id}/delete",
                "keys": "/my/email/keys",
            }
            self.login(user)
            pages[size] = {}
            for name, url in urls.items():
                self.assertEqual(self.get(url).status_code, 200)  # warm the caches
                before = self.cr.sql_log_count
                response = self.get(url)
                pages[size][name] = self.cr.sql_log_count - before
                self.assertEqual(response.status_code, 200)
            page = self.get(base)
            self.assertEqual(len(self.texts(page, "o_emboux_mailbox_row")), size)
            self.assertEqual(len(self.texts(page, "o_emboux_alias_row")), size)
        _logger.info(
            "portal queries, 2 vs 200 mailboxes: %s vs %s", pages[2], pages[200]
        )
        for name, small in pages[2].items():
            with self.subTest(page=name):
                self.assertLessEqual(pages[200][name] - small, 2)


@tagged("post_install", "-at_install")
class TestPortalTour(EmbouxPortalCase):
    def test_portal_tour(self):
        self.plan.mailboxes_per_domain = 2
        self.start_tour("/my", "emboux_mail_portal_tour", login=self.acme_user.login)

        second = self.Mailbox.search([("email", "=", "second@acme.test")])
        self.assertTrue(second._emboux_check_password("Tour-Changed-Secret-3"))
        self.assertFalse(self.Mailbox.search([("email", "=", "third@acme.test")]))
        self.assertEqual(self.domain.mailbox_count, 2)
        alias = self.Alias.search([("source", "=", "sales@acme.test")])
        self.assertEqual(alias.destination, "second@acme.test")
        key = self.Key.with_context(active_test=False).search(
            [("name", "=", "Tour key")]
        )
        self.assertEqual((key.partner_id, key.active), (self.acme, False))
