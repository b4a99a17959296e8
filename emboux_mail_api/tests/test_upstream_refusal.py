"""Connected mode behind the REST API: the upstream's refusal of what a
request changed is that request's own answer, and nothing stays."""

from unittest.mock import patch

from odoo.addons.emboux_mail.services import emboux_client as ec
from odoo.addons.emboux_mail.tests.common import run_postcommit_hooks
from odoo.addons.emboux_mail.tests.test_sync import FakeUpstream

from .common import EmbouxApiCase


class TestUpstreamRefusal(EmbouxApiCase):
    def setUp(self):
        super().setUp()
        self.env["ir.config_parameter"].set_param(
            "emboux_mail.upstream_url", "http://upstream.invalid"
        )
        self.upstream = FakeUpstream()
        mixin = type(self.env["emboux.mail.sync.mixin"])
        patcher = patch.object(
            mixin, "_emboux_sync_client", lambda _s, token=None: self.upstream
        )
        patcher.start()
        self.addCleanup(patcher.stop)
        run_postcommit_hooks(self)

    def test_refusal_is_the_answer(self):
        self.upstream.fail["create_domain"] = ec.EmbouxForbidden(
            "POST /domains/: 403", status=403, detail="Domain quota exceeded: 2/2"
        )
        Usage = self.env["emboux.mail.api.usage"].sudo()
        logged = Usage.search([("route", "=", "POST /domains/")])
        response = self.as_a("POST", "/domains/", json={"name": "refused.example"})
        self.assertDetail(response, 403, "Domain quota exceeded: 2/2")
        # counted once, with the answer the client got
        self.assertEqual(
            (Usage.search([("route", "=", "POST /domains/")]) - logged).mapped(
                "status"
            ),
            [403],
        )
        self.assertEqual(
            self.upstream.calls, [("create_domain", ("refused.example", "partner_42"))]
        )
        # a customer's domain is placed upstream unverified, with its token
        self.assertEqual(self.upstream.keywords[0]["verified"], False)
        self.assertFalse(
            self.env["emboux.mail.domain"].search([("name", "=", "refused.example")])
        )
        del self.upstream.fail["create_domain"]
        self.create_domain("refused.example")
        self.assertEqual(len(self.upstream.calls), 2)
