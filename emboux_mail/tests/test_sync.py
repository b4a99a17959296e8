"""The outbox of the connected mode, with a fake upstream client (Odoo
blocks outgoing HTTP in tests)."""

import os
from datetime import timedelta
from unittest.mock import patch

from odoo import Command, fields
from odoo.tests import tagged

from ..exceptions import EmbouxQuotaError, EmbouxUserError, EmbouxValidationError
from ..services import emboux_client as ec
from .common import EmbouxMailCase

SECRET_KEY = "the test servers' secret, not a Fernet key"


class FakeUpstream:
    """Records calls; ``fail`` maps a method name to the error it raises;
    ``token`` is the tenant token of the last client asked for;
    ``unanswered`` counts the calls that may still land (see the client)."""

    def __init__(self):
        self.calls = []
        self.keywords = []  # the keyword arguments of each call
        self.fail = {}
        self.token = None
        self.unanswered = 0

    def no_answer(self, *_args, **_kwargs):
        """A ``fail`` entry: the call was sent and its answer never came."""
        self.unanswered += 1
        return ec.EmbouxUnavailable("read timed out")

    def as_token(self, token):
        self.token = token
        return self

    def close(self):
        pass

    def __getattr__(self, method):
        def call(*args, **kwargs):
            self.calls.append((method, args))
            self.keywords.append(kwargs)
            error = self.fail.get(method)
            if callable(error):  # decides from the call's arguments
                error = error(*args, **kwargs)
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


class ConnectedCase(EmbouxMailCase):
    """Connected to a fake upstream (an ``upstream_class``), the server's
    encryption key set; receipts kept in memory."""

    upstream_class = FakeUpstream

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.startClassPatcher(patch.dict(os.environ, {"EMBOUX_SECRET_KEY": SECRET_KEY}))
        params = cls.env["ir.config_parameter"].sudo()
        params.set_param("emboux_mail.upstream_url", "http://upstream.invalid")
        params.set_param("emboux_mail.upstream_token", "master-token-xyz")
        cls.Event = cls.env["emboux.mail.sync.event"].sudo()
        # the delivery opens cursors of its own: over this test's transaction
        cls.registry.enter_test_mode(cls.cr)
        cls.addClassCleanup(cls.registry.leave_test_mode)

    def setUp(self):
        super().setUp()
        self.env.cr.precommit.clear()
        self.env.cr.postcommit.clear()
        self.upstream = self.upstream_class()
        self.receipts = set()
        mixin = type(self.env["emboux.mail.sync.mixin"])
        receipt = type(self.env["emboux.mail.sync.receipt"])
        receipts = self.receipts
        patches = [
            patch.object(
                mixin,
                "_emboux_sync_client",
                lambda _s, token=None: self.upstream.as_token(token),
            ),
            patch.object(receipt, "_emboux_add", lambda _s, key: receipts.add(key)),
            patch.object(receipt, "_emboux_has", lambda _s, key: key in receipts),
            patch.object(receipt, "_emboux_drop", lambda _s, key: None),
        ]
        for patcher in patches:
            patcher.start()
            self.addCleanup(patcher.stop)

    def commit(self):
        """What Odoo does at COMMIT: flush, then run the postcommit hooks
        (the test cursor never commits)."""
        self.env.cr.flush()
        try:
            self.env.cr.postcommit.run()
        finally:
            self.env.cr.postcommit.clear()  # as after a real COMMIT
            self.env.invalidate_all()  # the delivery wrote in cursors of its own

    def commit_refused(self, error_class):
        """The postcommit hooks raise ``error_class``."""
        try:
            self.commit()
        except error_class as error:
            return error
        self.fail(f"{error_class.__name__} not raised")


@tagged("post_install", "-at_install")
class TestSync(ConnectedCase):
    def test_sent_in_order(self):
        domain = self.make_domain("sync.example")
        self.Mailbox.create({"email": "a@sync.example", "password": "pw-1234567890"})
        self.Alias.create({"source": "b@sync.example", "destination": "a@x.org"})
        self.commit()
        self.assertEqual(
            [name for name, _args in self.upstream.calls],
            ["create_domain", "create_mailbox", "create_alias"],
        )
        self.assertEqual(self.upstream.calls[1][1][2], "pw-1234567890")
        self.assertEqual(domain.sync_state, "synced")
        self.assertNotStoredAnywhere("pw-1234567890")

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

    def test_a_change_behind_an_unanswered_one_waits_until_it_cannot_land(self):
        """An unanswered call may still reach the upstream: the next change
        of the same object, sent first, would be overwritten by it there."""
        self.make_domain("settle.example")
        mailbox = self.Mailbox.create(
            {"email": "a@settle.example", "password": "settle-pw-first-1"}
        )
        self.commit()
        self.upstream.fail["set_quota"] = self.upstream.no_answer
        mailbox.quota_mb = 100
        self.commit()
        first = self.Event.search(
            [("res_id", "=", mailbox.id), ("operation", "=", "mailbox_quota")]
        )
        self.assertEqual(first.state, "pending")
        self.assertTrue(first.settles_at)
        # the retry is answered: the first value is there, its stray try may
        # still land until it settles
        self.upstream.fail.clear()
        first.action_retry()
        self.assertEqual(first.state, "done")
        mailbox.quota_mb = 200
        self.commit()
        second = (
            self.Event.search(
                [("res_id", "=", mailbox.id), ("operation", "=", "mailbox_quota")]
            )
            - first
        )
        self.assertEqual(second.state, "pending")
        self.assertGreaterEqual(second.next_attempt_at, first.settles_at)
        self.assertEqual(
            self.upstream.calls[-1], ("set_quota", ("a@settle.example", 100))
        )
        # once it cannot land any more, the next change goes
        first.settles_at = "2000-01-01 00:00:00"
        second.action_retry()
        self.assertEqual(second.state, "done")
        self.assertEqual(
            self.upstream.calls[-1], ("set_quota", ("a@settle.example", 200))
        )

    def test_password_refused_while_unreachable(self):
        self.make_domain("pw.example")
        self.commit()
        mailbox = self.Mailbox.create(
            {"email": "a@pw.example", "password": "pw-first-1"}
        )
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
        self.assertEqual(
            key._emboux_decrypt(key.sudo().upstream_token_encrypted), token
        )
        self.assertEqual(self.upstream.calls[-1][0], "create_api_key")
        self.assertEqual(self.upstream.calls[-1][1][0], token)
        key.action_revoke()
        key.unlink()
        self.commit()
        self.assertEqual(
            [name for name, _args in self.upstream.calls][-2:],
            ["update_api_key", "delete_api_key"],
        )

    def test_inline_children_are_sent_after_their_domain(self):
        """A form saves a new domain with its mailboxes and aliases in one
        call: the upstream must hear of the domain first."""
        self.Domain.create(
            {
                "name": "form.example",
                "partner_id": self.tenant.id,
                "mailbox_ids": [
                    Command.create(
                        {"email": "a@form.example", "password": "Inline-pass-123"}
                    )
                ],
                "alias_ids": [
                    Command.create(
                        {"source": "b@form.example", "destination": "a@form.example"}
                    )
                ],
            }
        )
        self.commit()
        self.assertEqual(
            [(name, args[0]) for name, args in self.upstream.calls],
            [
                ("create_domain", "form.example"),
                ("create_mailbox", "form.example"),
                ("create_alias", "form.example"),
            ],
        )

    def test_tenant_reference_is_fixed_once_upstream(self):
        fresh = self.make_tenant("Fresh")
        fresh.emboux_partner_ref = "fresh_ref"
        fresh.emboux_partner_ref = "fresh_ref_2"  # nothing of it sent yet
        self.make_domain("ref.example", tenant=fresh)
        with self.assertRaises(EmbouxValidationError) as raised:
            fresh.emboux_partner_ref = "renamed"
        self.assertIn("'fresh_ref_2'", str(raised.exception))
        self.assertEqual(fresh.emboux_partner_ref, "fresh_ref_2")

    def test_plan_changes_send_the_keys_quotas(self):
        key, token = self.Key._emboux_generate({"partner_id": self.tenant.id})
        own, _own_token = self.Key._emboux_generate(
            {"partner_id": self.tenant.id, "mailboxes_per_domain": 1}
        )
        self.commit()
        calls = len(self.upstream.calls)
        self.plan.mailboxes_per_domain = 9
        self.commit()
        # only the key that follows the plan changes upstream
        self.assertEqual(self.upstream.calls[calls:], [("update_api_key", (token,))])
        self.assertEqual(self.upstream.keywords[-1]["mailboxes_per_domain"], 9)
        bigger = self.env["emboux.mail.plan"].create(
            {"name": "Bigger", "domains_allowed": 50, "mailboxes_per_domain": 20}
        )
        self.tenant.emboux_plan_id = bigger
        self.commit()
        self.assertEqual(self.upstream.calls[-1], ("update_api_key", (token,)))
        self.assertEqual(
            (
                self.upstream.keywords[-1]["domains_allowed"],
                self.upstream.keywords[-1]["mailboxes_per_domain"],
            ),
            (50, 20),
        )
        self.assertEqual(own.mailboxes_per_domain, 1)
        self.assertEqual(key.sync_state, "synced")

    def test_billing_suspension_and_reactivation_go_upstream(self):
        domains = self.Domain.browse()
        for name in ("a.billing.example", "b.billing.example", "c.billing.example"):
            domains |= self.make_domain(name)
        self.commit()
        small = self.env["emboux.mail.plan"].create(
            {"name": "Small", "domains_allowed": 1}
        )
        self.tenant.emboux_plan_id = small
        Grace = self.env["emboux.mail.grace"]
        Grace._emboux_run(self.tenant)
        grace = self.tenant.emboux_grace_ids
        grace.date_start = fields.Date.today() - timedelta(days=30)
        grace._emboux_advance(fields.Date.today())
        self.commit()
        suspended = [call for call in self.upstream.calls if call[0] == "suspend"]
        self.assertEqual(
            suspended,
            [
                ("suspend", ("c.billing.example", "billing")),
                ("suspend", ("b.billing.example", "billing")),
            ],
        )
        self.assertEqual(
            set(grace.suspended_domain_ids.mapped("sync_state")), {"synced"}
        )
        self.tenant.emboux_plan_id = self.plan
        Grace._emboux_run(self.tenant)
        self.commit()
        self.assertEqual(
            sorted(call for call in self.upstream.calls if call[0] == "activate"),
            [
                ("activate", ("b.billing.example",)),
                ("activate", ("c.billing.example",)),
            ],
        )
        self.assertEqual(grace.state, "closed")
        self.assertFalse(any(domains.mapped("suspended")))

    def test_sending_settings_go_upstream_and_come_back_on_refusal(self):
        domain = self.make_domain("send.sync.example")
        self.commit()
        self.upstream.calls.clear()
        domain.write({"outbound_daily_limit": 250, "outbound_enforcement": "soft"})
        domain.transfer_monthly_mb = 2048
        self.commit()
        self.assertEqual(
            self.upstream.calls,
            [
                (
                    "set_outbound",
                    (
                        "send.sync.example",
                        {"outbound_enforcement": "soft", "outbound_daily_limit": 250},
                    ),
                ),
                ("set_transfer", ("send.sync.example", 2048)),
            ],
        )
        # a refusal takes the change back on both sides
        self.upstream.calls.clear()
        self.upstream.fail["set_transfer"] = ec.EmbouxBadRequest(
            "400", 400, "Transfer too large"
        )
        domain.outbound_monthly_limit = 99
        domain.transfer_monthly_mb = 999999
        error = self.commit_refused(EmbouxValidationError)
        self.assertIn("Transfer too large", str(error))
        self.assertEqual(
            self.upstream.calls,
            [
                ("set_outbound", ("send.sync.example", {"outbound_monthly_limit": 99})),
                ("set_transfer", ("send.sync.example", 999999)),
                (
                    "set_outbound",
                    ("send.sync.example", {"outbound_monthly_limit": 10000}),
                ),
            ],
        )
        self.assertEqual(
            (domain.outbound_monthly_limit, domain.transfer_monthly_mb), (10000, 2048)
        )


class FakeListingUpstream(FakeUpstream):
    """A fake upstream that also answers the lists the reconcile reads;
    ``owned`` maps a tenant token to the names of its domains."""

    def __init__(self):
        super().__init__()
        self.domains = []
        self.owned = {}
        self.mailboxes = []
        self.aliases = []

    def list_domains(self, limit=None, offset=None):
        if self.token:
            names = self.owned.get(self.token)
            if names is None:
                raise ec.EmbouxForbidden("403", 403, "Invalid API key")
            items = [d for d in self.domains if d["name"] in names]
        else:
            items = self.domains
        offset = offset or 0
        return ec.Page(items[offset : offset + (limit or len(items))], len(items))

    def list_mailboxes(self, domain_id=None, limit=None, offset=None):
        offset = offset or 0
        items = self.mailboxes[offset : offset + (limit or len(self.mailboxes))]
        return ec.Page(items, len(self.mailboxes))

    def list_aliases(self, domain_id=None, limit=None, offset=None):
        offset = offset or 0
        items = self.aliases[offset : offset + (limit or len(self.aliases))]
        return ec.Page(items, len(self.aliases))


@tagged("post_install", "-at_install")
class TestReconcile(ConnectedCase):
    """Import what exists only upstream, report the rest, delete nothing."""

    upstream_class = FakeListingUpstream

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Reconcile = cls.env["emboux.mail.reconcile"]
        cls.tenant._emboux_tenant()
        encrypted = cls.Key._emboux_encrypt("tenant-token-0123456789")
        cls.key.sudo().with_context(emboux_sync_skip=True).write(
            {"upstream_token_encrypted": encrypted}
        )

    def setUp(self):
        super().setUp()
        self.upstream.domains = [
            {"id": 1, "name": "up.example"},
            {"id": 2, "name": "orphan.example"},
            {"id": 3, "name": "both.example"},
        ]
        self.upstream.owned = {"tenant-token-0123456789": {"up.example"}}
        self.upstream.mailboxes = [
            {"id": 1, "domain_id": 1, "email": "a@up.example"},
            {"id": 2, "domain_id": 3, "email": "m@both.example"},
        ]
        self.upstream.aliases = [
            {
                "id": 1,
                "domain_id": 1,
                "source": "b@up.example",
                "destination": "a@up.example",
            },
            {
                "id": 2,
                "domain_id": 3,
                "source": "c@both.example",
                "destination": "elsewhere@x.org",
            },
        ]

    def local(self):
        """What exists here before the run, delivered upstream already."""
        self.make_domain("both.example")
        self.make_domain("local.example")
        self.Mailbox.create({"email": "m@both.example", "password": "pw-1234567890"})
        self.Alias.create({"source": "c@both.example", "destination": "m@x.org"})
        self.commit()
        self.upstream.calls.clear()

    def test_imports_upstream_only_without_sending_back(self):
        self.local()
        events_before = self.Event.search_count([])
        run = self.Reconcile._emboux_reconcile()
        self.env.cr.precommit.run()
        self.assertEqual(run.state, "done")
        self.assertEqual(
            (run.imported_domains, run.imported_mailboxes, run.imported_aliases),
            (2, 1, 1),
        )
        self.assertEqual(run.import_failures, 0, run.report)
        up = self.Domain.search([("name", "=", "up.example")])
        self.assertEqual(up.partner_id, self.tenant)
        orphan = self.Domain.search([("name", "=", "orphan.example")])
        self.assertTrue(orphan)
        self.assertFalse(orphan.partner_id)
        self.assertTrue(self.Mailbox.search([("email", "=", "a@up.example")]))
        alias = self.Alias.search([("source", "=", "b@up.example")])
        self.assertEqual(alias.destination, "a@up.example")
        # nothing imported went back upstream
        self.assertEqual(self.Event.search_count([]), events_before)
        # it only read: the lists, and the key's settings to compare them
        self.assertEqual(
            {name for name, _args in self.upstream.calls}, {"api_key_usage"}
        )

    def test_changes_on_their_way_are_left_alone(self):
        """A mailbox whose create got no answer (taken back here, its
        undoing waiting until the call cannot land) and a domain whose
        delete waits in the outbox: the upstream still shows both, and
        importing them would bring back what was undone or deleted here."""
        self.local()
        self.upstream.fail["create_mailbox"] = self.upstream.no_answer
        self.Mailbox.create({"email": "new@local.example", "password": "pw-1234567890"})
        self.commit_refused(EmbouxUserError)
        # the call did land
        self.upstream.mailboxes.append(
            {"id": 9, "domain_id": 4, "email": "new@local.example"}
        )
        self.Domain.search([("name", "=", "both.example")]).unlink()
        self.commit()  # queued behind the undoing, on the customer's lane
        self.upstream.fail.clear()
        run = self.Reconcile._emboux_reconcile()
        self.assertFalse(self.Domain.search([("name", "=", "both.example")]))
        self.assertFalse(self.Mailbox.search([("email", "=", "new@local.example")]))
        self.assertIn("both.example: changes on their way", run.report)
        self.assertIn("new@local.example: changes on their way", run.report)
        # what has settled is still imported
        self.assertTrue(self.Domain.search([("name", "=", "up.example")]))

    def test_adopted_with_the_token_the_upstream_still_knows(self):
        """The tenant's token was swapped after the create whose answer was
        lost: the swap waits behind it on the tenant's lane, so the upstream
        still knows the old token only, and the ownership is read with it."""
        self.upstream.fail["create_domain"] = ec.EmbouxUnavailable("lost")
        domain = self.make_domain("up.example")
        self.commit()
        self.key.sudo().token = "tenant-token-new-0123456789"
        self.commit()
        events = self.Event.search([("state", "=", "pending")], order="id")
        self.assertEqual(
            events.mapped("operation"), ["domain_create", "key_create", "key_delete"]
        )
        exists = ec.EmbouxBadRequest("400", 400, "Domain already exists")
        self.upstream.fail = {"create_domain": exists}
        events[0].action_retry()
        self.assertEqual(events[0].state, "done")
        self.assertTrue(domain.exists())

    def test_lost_create_answer_is_adopted_when_exactly_ours(self):
        """The upstream applied creates whose answers were lost (no receipt):
        the outbox's retries meet "already exists". The same object, owned by
        the same tenant (its own key's list), is ours; anything else stays
        a refusal."""
        self.upstream.fail["create_domain"] = ec.EmbouxUnavailable("lost")
        self.make_domain("up.example")  # upstream: owned by the tenant
        self.commit()
        # (other tenants here: a refusal also takes back what waits behind
        # it on the same customer's lane)
        self.make_domain("orphan.example", self.make_tenant("Orphan"))
        self.commit()  # upstream: owned by nobody
        # upstream: another tenant's
        self.upstream.domains.append({"id": 4, "name": "theirs.example"})
        self.make_domain("theirs.example", self.make_tenant("Theirs"))
        self.commit()
        self.Alias.create({"source": "b@up.example", "destination": "a@up.example"})
        self.commit()
        self.upstream.aliases.append(
            {
                "id": 3,
                "domain_id": 1,
                "source": "c@up.example",
                "destination": "elsewhere@x.org",
            }
        )
        self.Alias.create({"source": "c@up.example", "destination": "m@x.org"})
        self.commit()
        events = self.Event.search([("state", "=", "pending")], order="id")
        self.assertEqual(len(events), 5)
        events.write({"attempts": 1})  # each tried once, its answer lost
        exists = ec.EmbouxBadRequest("400", 400, "already exists")
        self.upstream.fail = {"create_domain": exists, "create_alias": exists}
        events.action_retry()
        self.Event._cron_deliver()
        self.assertEqual(
            [(e.name, e.state) for e in events],
            [
                ("up.example", "done"),
                ("orphan.example", "error"),
                ("theirs.example", "error"),
                ("b@up.example", "done"),
                ("c@up.example", "error"),  # another destination
            ],
        )

    def test_reports_local_only_and_differences_deletes_nothing(self):
        self.local()
        run = self.Reconcile._emboux_reconcile()
        self.assertEqual(run.local_only, 1)  # local.example
        # c@both.example's destination; both.example is not in the tenant's list
        self.assertEqual(run.differences, 2)
        self.assertIn("Domain local.example exists only here", run.report)
        self.assertIn(
            "Alias c@both.example: destination here m@x.org, upstream elsewhere@x.org",
            run.report,
        )
        self.assertIn(
            f"Domain both.example: owner here {self.tenant.emboux_partner_ref}, "
            "upstream None",
            run.report,
        )
        self.assertTrue(self.Domain.search([("name", "=", "local.example")]))
        alias = self.Alias.search([("source", "=", "c@both.example")])
        self.assertEqual(alias.destination, "m@x.org")
        # a second run imports nothing more
        again = self.Reconcile._emboux_reconcile()
        self.assertEqual(
            (again.imported_domains, again.imported_mailboxes, again.imported_aliases),
            (0, 0, 0),
        )
        self.assertEqual(again.local_only, 1)

    def test_every_upstream_field_is_compared(self):
        self.local()
        self.upstream.owned["tenant-token-0123456789"].add("both.example")
        self.upstream.domains[2].update(
            suspended=True,
            suspension_reason="billing",
            parent_domain=None,
            is_wildcard=False,
            verified=True,
        )
        self.upstream.mailboxes[1]["quota_mb"] = 7
        settings = {"domains_allowed": 99, "mailboxes_per_domain": 2, "active": True}
        self.upstream.api_key_usage = lambda token, since=None: dict(settings)
        run = self.Reconcile._emboux_reconcile()
        mailbox = self.Mailbox.search([("email", "=", "m@both.example")])
        expected = [
            "Domain both.example: suspended here False, upstream True",
            "Domain both.example: suspension_reason here None, upstream billing",
            f"Mailbox m@both.example: quota_mb here {mailbox.quota_mb}, upstream 7",
            f"domains_allowed here {self.key.domains_allowed}, upstream 99",
            "Alias c@both.example: destination here m@x.org",
        ]
        for line in expected:
            self.assertIn(line, run.report)
        self.assertEqual(run.differences, len(expected))

    def test_unreadable_upstream_is_a_failed_run(self):
        self.upstream.list_domains = lambda **kw: (_ for _ in ()).throw(
            ec.EmbouxUnavailable("down")
        )
        run = self.Reconcile._emboux_reconcile()
        self.assertEqual(run.state, "failed")
        self.assertIn("down", run.report)

    def test_cron_and_action(self):
        self.env.ref(
            "emboux_mail.ir_cron_emboux_mail_reconcile"
        ).method_direct_trigger()
        self.assertTrue(self.Reconcile.search([]))
        action = self.Reconcile.action_reconcile()
        self.assertEqual(action["res_model"], "emboux.mail.reconcile")


class TestReceipts(EmbouxMailCase):
    """Receipts are written in a cursor of their own; in test mode that
    cursor shares the test's transaction, so what they do is seen here."""

    def setUp(self):
        super().setUp()
        self.registry.enter_test_mode(self.cr)
        self.addCleanup(self.registry.leave_test_mode)

    def receipts(self):
        self.cr.execute("SELECT key FROM emboux_mail_sync_receipt")
        return {key for (key,) in self.cr.fetchall()}

    def add(self, *keys, age=timedelta()):
        for key in keys:
            self.cr.execute(
                "INSERT INTO emboux_mail_sync_receipt (key, create_date) "
                "VALUES (%s, %s)",
                [key, fields.Datetime.now() - age],
            )

    def test_drop_is_exact_and_old_receipts_are_vacuumed(self):
        domain, lookalike, underscore = (
            "emboux.mail.domain:example.com",
            "emboux.mail.domain:example.com.au",
            "emboux.mail.domain:example_com",
        )
        key, key_token, other_key = (
            "emboux.mail.api.key:emboux.mail.api.key/7",
            "emboux.mail.api.key:emboux.mail.api.key/7:ab12cd34",
            "emboux.mail.api.key:emboux.mail.api.key/77:ab12cd34",
        )
        self.add(domain, lookalike, underscore, key, key_token, other_key)
        Event = self.env["emboux.mail.sync.event"].sudo()
        Receipt = self.env["emboux.mail.sync.receipt"]
        dropped = Event.new(
            {
                "res_model": "emboux.mail.domain",
                "operation": "domain_delete",
                "payload": {"name": "example.com"},
            }
        )
        Receipt._emboux_drop(dropped.idempotency_key)
        self.assertEqual(
            self.receipts(), {lookalike, underscore, key, key_token, other_key}
        )
        dropped = Event.new(
            {"res_model": "emboux.mail.api.key", "res_id": 7, "operation": "key_delete"}
        )
        Receipt._emboux_drop(dropped.idempotency_key)
        self.assertEqual(self.receipts(), {other_key, lookalike, underscore})
        self.add("emboux.mail.alias:old@example.com", age=timedelta(days=2))
        Receipt._gc_expired()
        self.assertEqual(self.receipts(), {other_key, lookalike, underscore})
