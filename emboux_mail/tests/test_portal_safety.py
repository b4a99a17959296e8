"""Tenant safety through the portal: its pages add domains that wait for
their proof, and its JSON-RPC reaches nothing beyond what the pages do."""

from unittest.mock import patch

from lxml import html

from odoo.tests import JsonRpcException, tagged

from ..services import dns_checker
from ..services import emboux_client as ec
from .common import FakeDns, run_postcommit_hooks
from .test_portal import EmbouxPortalCase
from .test_sync import FakeUpstream


@tagged("post_install", "-at_install")
class TestPortalSafety(FakeDns, EmbouxPortalCase):
    def call(self, model, method, *args, **kwargs):
        return self.make_jsonrpc_request(
            "/web/dataset/call_kw",
            {"model": model, "method": method, "args": list(args), "kwargs": kwargs},
        )

    def assertRefused(self, error_name, model, method, *args, **kwargs):
        with self.assertRaises(JsonRpcException) as raised:
            self.call(model, method, *args, **kwargs)
        self.assertEqual(raised.exception.args[0], error_name)

    # -- adding and verifying a domain ---------------------------------------------
    def test_added_domain_waits_for_its_proof(self):
        self.login(self.acme_user)
        response = self.post("/my/email/domain/new", {"name": "New-Acme.test"})
        domain = self.Domain.search([("name", "=", "new-acme.test")])
        self.assertEqual(domain.partner_id, self.acme)
        self.assertFalse(domain.verified)
        page = self.follow(response)
        self.assertIn("Prove that this domain is yours", page.text)
        values = html.fromstring(page.text).xpath(
            "//input[contains(@class, 'o_emboux_verification_record')]/@value"
        )
        self.assertEqual(values, [f"emboux-verification={domain.verification_token}"])
        verify = self.domain_url(domain, "/verify")
        with self.fake_dns({}):
            self.assertError(self.post(verify), 200, "was not found yet (Missing)")
        self.assertFalse(domain.verified)
        value = dns_checker.VERIFICATION_PREFIX + domain.verification_token
        with self.fake_dns({("new-acme.test", "TXT"): [f'"{value}"']}):
            page = self.follow(self.post(verify))
        self.assertEqual(
            self.texts(page, "o_emboux_done"), ["new-acme.test is verified."]
        )
        self.assertTrue(domain.verified)
        self.assertNotIn("Prove that this domain is yours", page.text)

    def test_names_no_customer_may_claim(self):
        self.login(self.acme_user)
        for name, status, message in (
            ("co.uk", 400, "is a public suffix"),
            ("mail.globex.test", 400, "already exists"),
            ("globex.test", 400, "already exists"),
            ("not a name", 422, "is not valid"),
        ):
            with self.subTest(name=name):
                response = self.post("/my/email/domain/new", {"name": name})
                self.assertError(response, status, message)
        self.assertEqual(
            self.Domain.search_count([("partner_id", "=", self.acme.id)]), 1
        )
        # another tenant's domain cannot be verified from this portal either
        response = self.post(self.domain_url(self.other_domain, "/verify"))
        self.assertEqual(response.status_code, 404)

    # -- who the tenant is -----------------------------------------------------------
    def test_a_subsidiary_tenant_is_not_its_parents(self):
        subsidiary = self.env["res.partner"].create(
            {
                "name": "Acme Subsidiary",
                "is_company": True,
                "parent_id": self.acme.id,
                "emboux_partner_ref": "partner_acme_sub",
                "emboux_plan_id": self.plan.id,
            }
        )
        theirs = self.Domain.create(
            {"name": "sub-co.test", "partner_id": subsidiary.id}
        )
        self.login(self.acme_user)
        self.assertNotIn("sub-co.test", self.get("/my/email").text)
        self.assertEqual(self.get(self.domain_url(theirs)).status_code, 404)
        names = [
            row["name"]
            for row in self.call("emboux.mail.domain", "search_read", [], ["name"])
        ]
        self.assertEqual(names, ["acme.test"])

    def test_revoking_a_key_is_logged_with_the_portal_user(self):
        self.login(self.acme_user)
        response = self.post(f"/my/email/keys/{self.key.id}/revoke")
        self.assertEqual(response.status_code, 303)
        log = self.env["emboux.mail.security.log"].search(
            [("event", "=", "key_revoked"), ("res_id", "=", self.key.id)]
        )
        self.assertEqual(
            (log.user_id, log.channel, log.partner_id, log.address),
            (self.acme_user, "portal", self.acme, "127.0.0.1"),
        )

    # -- connected mode -----------------------------------------------------------
    def test_a_change_the_upstream_refuses_is_shown_on_its_page(self):
        """Connected, the upstream refuses a change once it is committed: the
        form is still answered by its page, saying why, and nothing stays."""
        self.env["ir.config_parameter"].set_param(
            "emboux_mail.upstream_url", "http://upstream.invalid"
        )
        upstream = FakeUpstream()
        upstream.fail["create_alias"] = ec.EmbouxForbidden(
            "POST /aliases/: 403", status=403, detail="Alias quota exceeded: 9/9"
        )
        mixin = type(self.env["emboux.mail.sync.mixin"])
        self.startPatcher(
            patch.object(mixin, "_emboux_sync_client", lambda _s, token=None: upstream)
        )
        run_postcommit_hooks(self)
        self.login(self.acme_user)
        response = self.post(
            self.domain_url(tail="/alias/new"),
            {"alias_local_part": "sales", "destination": "info@acme.test"},
        )
        self.assertEqual(response.headers["Location"].split("?")[0], self.domain_url())
        page = self.assertError(
            response,
            403,
            "Alias quota exceeded: 9/9",
            "Nothing was changed: your change was taken back.",
        )
        self.assertFalse(self.texts(page, "o_emboux_done"))
        self.assertEqual([call[0] for call in upstream.calls], ["create_alias"])
        self.assertFalse(self.Alias.search([("source", "=", "sales@acme.test")]))

    # -- JSON-RPC reaches nothing the pages do not -----------------------------------
    def test_json_rpc_reaches_no_internal_action(self):
        self.env["ir.config_parameter"].set_param(
            "emboux_mail.upstream_url", "http://127.0.0.1:9"
        )
        self.login(self.acme_user)
        access = "odoo.exceptions.AccessError"
        own, other = [self.domain.id], [self.other_domain.id]
        for model, method, args in (
            ("emboux.mail.domain", "action_sync_retry", [own]),
            ("emboux.mail.domain", "action_sync_retry", [other]),
            ("emboux.mail.domain", "action_suspend", [own]),
            ("emboux.mail.domain", "action_activate", [own]),
            ("emboux.mail.domain", "action_vouch", [own]),
            ("emboux.mail.domain", "action_verify", [other]),
            ("emboux.mail.domain", "action_check_dns", [own]),
            ("emboux.mail.domain", "write", [own, {"verified": True}]),
            ("emboux.mail.domain", "create", [{"name": "rpc.test"}]),
            ("emboux.mail.mailbox", "write", [[self.mailbox.id], {"quota_mb": 0}]),
            ("emboux.mail.mailbox", "action_sync_retry", [[self.mailbox.id]]),
            ("emboux.mail.alias", "action_sync_retry", [[self.alias.id]]),
            ("emboux.mail.api.key", "action_revoke", [[self.other_key.id]]),
            ("emboux.mail.api.key", "action_restore", [[self.key.id]]),
            ("emboux.mail.api.key", "action_sync_retry", [[self.key.id]]),
            ("emboux.mail.reconcile", "action_reconcile", []),
            ("emboux.mail.sync.event", "action_retry", [[]]),
            ("emboux.mail.security.log", "search_read", [[]]),
        ):
            with self.subTest(model=model, method=method):
                self.assertRefused(access, model, method, *args)
        self.assertFalse(self.domain.suspended)
        self.assertEqual(self.mailbox.quota_mb, 500)
        self.assertTrue(self.other_key.active)
        self.assertFalse(self.env["emboux.mail.reconcile"].search([]))
