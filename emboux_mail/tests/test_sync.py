"""The outbox of the connected mode, with a fake upstream client (Odoo
blocks outgoing HTTP in tests)."""

from unittest.mock import patch

from odoo.tests import tagged

from ..exceptions import EmbouxQuotaError, EmbouxUserError, EmbouxValidationError
from ..services import emboux_client as ec
from .common import EmbouxMailCase


class FakeUpstream:
    """Records calls; ``fail`` maps a method name to the error it raises."""

    def __init__(self):
        self.calls = []
        self.fail = {}

    def close(self):
        pass

    def __getattr__(self, method):
        def call(*args, **kwargs):
            self.calls.append((method, args))
            error = self.fail.get(method)
            if error:
                raise error
            if method == "register_subdomain":
                return {
                    "name": args[0],
                    "provider": "mailgun",
                    "verified": True,
                    "verification_token": "tok",
                    "dkim_tokens": [],
                    "dns_records": [],
                }
            return {}

        return call


@tagged("post_install", "-at_install")
class TestSync(EmbouxMailCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        params = cls.env["ir.config_parameter"].sudo()
        params.set_param("emboux_mail.upstream_url", "http://upstream.invalid")
        params.set_param("emboux_mail.upstream_token", "master-token-xyz")
        cls.Event = cls.env["emboux.mail.sync.event"].sudo()

    def setUp(self):
        super().setUp()
        self.env.cr.precommit.clear()
        self.upstream = FakeUpstream()
        self.receipts = set()
        mixin = type(self.env["emboux.mail.sync.mixin"])
        event = type(self.env["emboux.mail.sync.event"])
        receipts = self.receipts
        patches = [
            patch.object(mixin, "_emboux_sync_client", lambda _s: self.upstream),
            patch.object(
                event,
                "_emboux_receipt_add",
                lambda s: receipts.add(s._emboux_receipt_key()),
            ),
            patch.object(
                event,
                "_emboux_receipt_has",
                lambda s: s._emboux_receipt_key() in receipts,
            ),
            patch.object(event, "_emboux_receipt_drop", lambda s: None),
        ]
        for patcher in patches:
            patcher.start()
            self.addCleanup(patcher.stop)

    def commit(self):
        """What Odoo does before COMMIT: run the precommit hooks."""
        self.env.cr.precommit.run()

    def commit_refused(self, error_class):
        """The precommit hooks raise ``error_class`` (no assertRaises: its
        savepoint would run the hooks first)."""
        try:
            self.commit()
        except error_class as error:
            return error
        self.fail(f"{error_class.__name__} not raised")

    def test_sent_in_order(self):
        domain = self.make_domain("sync.example")
        self.Mailbox.create({"email": "a@sync.example", "password": "pw-12345"})
        self.Alias.create({"source": "b@sync.example", "destination": "a@x.org"})
        self.commit()
        self.assertEqual(
            [name for name, _args in self.upstream.calls],
            ["create_domain", "create_mailbox", "create_alias"],
        )
        self.assertEqual(self.upstream.calls[1][1][2], "pw-12345")
        self.assertEqual(domain.sync_state, "synced")
        self.assertNotStoredAnywhere("pw-12345")

    def test_refusal_raises_upstream_detail(self):
        self.upstream.fail["create_domain"] = ec.EmbouxForbidden(
            "403", 403, "Domain quota exceeded: 1/1"
        )
        self.make_domain("refused.example")
        error = self.commit_refused(EmbouxQuotaError)
        self.assertIn("Domain quota exceeded: 1/1", str(error))
        self.assertEqual(error.detail, "Domain quota exceeded: 1/1")

    def test_unreachable_goes_to_outbox_then_cron(self):
        self.upstream.fail["create_domain"] = ec.EmbouxUnavailable("down")
        domain = self.make_domain("later.example")
        domain.action_suspend()
        self.commit()
        events = self.Event.search([("res_id", "=", domain.id)], order="id")
        self.assertEqual(events.mapped("state"), ["pending", "pending"])
        self.assertEqual(events[0].attempts, 1)
        self.assertEqual(domain.sync_state, "pending")
        self.assertIn("down", domain.sync_error)
        # back online: the retry delivers both, in order
        self.upstream.fail.clear()
        self.upstream.calls.clear()
        domain.action_sync_retry()
        self.Event._cron_deliver()
        self.assertEqual(events.mapped("state"), ["done", "done"])
        self.assertEqual(
            [name for name, _args in self.upstream.calls], ["create_domain", "suspend"]
        )
        self.assertEqual(domain.sync_state, "synced")

    def test_password_refused_while_unreachable(self):
        self.make_domain("pw.example")
        self.commit()
        mailbox = self.Mailbox.create({"email": "a@pw.example", "password": "pw-1"})
        self.commit()
        self.upstream.fail["set_password"] = ec.EmbouxUnavailable("down")
        mailbox.password = "pw-secret-2"
        error = self.commit_refused(EmbouxUserError)
        self.assertIn("password", str(error))

    def test_replay_already_exists_is_success(self):
        domain = self.make_domain("replay.example")
        self.commit()
        # Odoo replays the request: the upstream has it, and we created it
        self.upstream.fail["create_domain"] = ec.EmbouxBadRequest(
            "400", 400, "Domain already exists"
        )
        domain._emboux_sync_created()
        self.commit()
        self.assertEqual(domain.sync_state, "synced")
        # created by someone else: a refusal
        other = self.make_domain("foreign.example")
        error = self.commit_refused(EmbouxValidationError)
        self.assertIn("Domain already exists", str(error))
        self.assertTrue(other)

    def test_delete_not_found_is_success(self):
        domain = self.make_domain("gone.example")
        self.commit()
        self.upstream.fail["delete_domain"] = ec.EmbouxNotFound(
            "404", 404, "Domain not found"
        )
        domain.unlink()
        self.commit()
        event = self.Event.search([("operation", "=", "domain_delete")], limit=1)
        self.assertEqual(event.state, "done")

    def test_register_subdomain_of_verified_wildcard(self):
        parent = self.make_domain("parent.example")
        parent.write({"is_wildcard": True, "verified": True})
        self.commit()
        child = self.make_domain("x.parent.example")
        self.commit()
        self.assertEqual(
            [name for name, _args in self.upstream.calls][-2:],
            ["create_domain", "register_subdomain"],
        )
        self.assertEqual(child.provider, "mailgun")
        self.assertTrue(child.verified)
        self.assertEqual(child.verification_token, "tok")

    def test_api_key_sent_with_its_token(self):
        key, token = self.Key._emboux_generate({"partner_id": self.tenant.id})
        self.commit()
        self.assertEqual(key.sudo().upstream_token, token)
        self.assertEqual(self.upstream.calls[-1][0], "create_api_key")
        self.assertEqual(self.upstream.calls[-1][1][0], token)
        key.action_revoke()
        key.unlink()
        self.commit()
        self.assertEqual(
            [name for name, _args in self.upstream.calls][-2:],
            ["update_api_key", "delete_api_key"],
        )
