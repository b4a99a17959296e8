"""Connected mode, all or nothing: a change is sent only once committed, and
a refusal at any step takes the whole change back, upstream and here."""

from odoo import Command
from odoo.tests import tagged

from ..exceptions import EmbouxUserError, EmbouxValidationError
from ..services import emboux_client as ec
from .test_sync import ConnectedCase


def refused(detail, status=400):
    return ec.EmbouxBadRequest(f"{status}", status, detail)


@tagged("post_install", "-at_install")
class TestTakeBack(ConnectedCase):
    def called(self):
        return [name for name, _args in self.upstream.calls]

    def test_nothing_is_sent_before_the_commit(self):
        with self.env.cr.savepoint():
            self.make_domain("savepoint.example")
        self.env.cr.flush()  # what a flushing savepoint runs
        self.assertEqual(self.upstream.calls, [])
        self.commit()
        self.assertEqual(self.called(), ["create_domain"])

    def test_refusal_mid_save_takes_the_whole_save_back(self):
        self.upstream.fail["create_alias"] = refused("Alias quota exceeded")
        domain = self.Domain.create(
            {
                "name": "multi.example",
                "partner_id": self.tenant.id,
                "mailbox_ids": [
                    Command.create(
                        {"email": "a@multi.example", "password": "pw-a-123456"}
                    )
                ],
                "alias_ids": [
                    Command.create(
                        {"source": "b@multi.example", "destination": "a@multi.example"}
                    )
                ],
            }
        )
        error = self.commit_refused(EmbouxValidationError)
        self.assertIn("Alias quota exceeded", str(error))
        # the delivered steps are undone upstream, newest first
        self.assertEqual(
            self.called(),
            [
                "create_domain",
                "create_mailbox",
                "create_alias",
                "delete_mailbox",
                "delete_domain",
            ],
        )
        # and here: nothing of the save stays
        self.assertFalse(domain.exists())
        self.assertFalse(self.Mailbox.search([("email", "=", "a@multi.example")]))
        self.assertFalse(self.Alias.search([("source", "=", "b@multi.example")]))
        events = self.Event.search([("name", "like", "multi.example")], order="id")
        self.assertEqual(
            events.mapped("state"), ["undone", "undone", "error"], events.mapped("name")
        )

    def test_written_values_come_back(self):
        domain = self.make_domain("write.example")
        mailbox = self.Mailbox.create(
            {"email": "q@write.example", "password": "pw-q-123456", "quota_mb": 100}
        )
        self.commit()
        self.upstream.calls.clear()
        self.upstream.fail["suspend"] = refused("Domain is locked")
        mailbox.quota_mb = 250
        domain.action_suspend()
        self.commit_refused(EmbouxValidationError)
        self.assertEqual(self.called(), ["set_quota", "suspend", "set_quota"])
        self.assertEqual(self.upstream.calls[-1][1], ("q@write.example", 100))
        self.assertEqual((mailbox.quota_mb, domain.suspended), (100, False))
        self.assertEqual(domain.sync_state, "error")
        # the trail shows the change, then its taking back
        trail = self.env["emboux.mail.audit"].search(
            [("res_model", "=", mailbox._name), ("res_id", "=", mailbox.id)],
            order="id",
        )
        self.assertEqual(
            [entry.changes.get("quota_mb") for entry in trail[-2:]],
            [{"old": 100, "new": 250}, {"old": 250, "new": 100}],
        )

    def test_an_unanswered_create_is_undone_once_it_cannot_be_on_its_way(self):
        """No answer to a mailbox's creation: the save is taken back here,
        and its deletion upstream waits; "not found" there does not end it
        while the creation may still arrive."""
        self.make_domain("late.example")
        self.commit()
        self.upstream.calls.clear()
        self.upstream.fail["create_mailbox"] = ec.EmbouxUnavailable("timed out")
        self.Mailbox.create({"email": "l@late.example", "password": "pw-l-123456"})
        self.commit_refused(EmbouxUserError)
        self.assertEqual(self.called(), ["create_mailbox"])  # nothing sent after
        undo = self.Event.search([("operation", "=", "mailbox_delete")])
        self.assertEqual(
            (undo.state, undo.undoes_id.operation), ("pending", "mailbox_create")
        )
        self.upstream.fail["delete_mailbox"] = ec.EmbouxNotFound(
            "404", status=404, detail="Mailbox not found"
        )
        undo.action_retry()
        self.assertEqual(undo.state, "pending")  # maybe still on its way
        payload = dict(undo.payload, in_flight_until="2000-01-01T00:00:00")
        undo.sudo().payload = payload
        undo.action_retry()
        self.assertEqual(undo.state, "done")  # long gone: nothing was created
        self.assertEqual(self.called().count("delete_mailbox"), 2)

    def test_a_refused_delete_brings_the_rows_back(self):
        domain = self.make_domain("keep.example")
        mailbox = self.Mailbox.create(
            {"email": "k@keep.example", "password": "pw-k-123456"}
        )
        self.commit()
        ids = (domain.id, mailbox.id)
        self.upstream.fail["delete_domain"] = ec.EmbouxForbidden(
            "403", status=403, detail="Not yours"
        )
        domain.unlink()
        self.commit_refused(EmbouxUserError)
        restored = self.Domain.search([("name", "=", "keep.example")])
        self.assertEqual((restored.id, restored.mailbox_ids.ids), (ids[0], [ids[1]]))
        self.assertEqual(restored.mailbox_count, 1)
        # deleted, then back: the trail tells both
        trail = self.env["emboux.mail.audit"].search(
            [("res_model", "=", domain._name), ("res_id", "=", domain.id)],
            order="id",
        )
        self.assertEqual(trail[-2:].mapped("action"), ["unlink", "create"])

    def test_a_refused_token_swap_keeps_the_old_token(self):
        key, token = self.Key._emboux_generate({"partner_id": self.tenant.id})
        self.commit()
        self.upstream.calls.clear()
        self.upstream.fail["create_api_key"] = refused("API key already exists")
        key._emboux_set_token("emb_the_new_token_0123456789")
        self.commit_refused(EmbouxValidationError)
        # the new key is created first (the upstream's key with that token is
        # not this tenant's): its refusal leaves the old one alone
        self.assertEqual(self.called(), ["create_api_key", "api_key_usage"])
        self.assertEqual(self.Key._emboux_find_by_token(token), key)
        self.assertFalse(self.Key._emboux_find_by_token("emb_the_new_token_0123456789"))
        mixin = self.env["emboux.mail.sync.mixin"]
        self.assertEqual(
            mixin._emboux_decrypt(key.sudo().upstream_token_encrypted), token
        )

    def test_a_refused_plan_change_comes_back_everywhere(self):
        other = self.make_tenant("Other")
        first, first_token = self.Key._emboux_generate({"partner_id": self.tenant.id})
        second, second_token = self.Key._emboux_generate({"partner_id": other.id})
        self.commit()
        self.upstream.calls.clear()
        updates = []

        def second_update_refused(token, **values):
            updates.append(token)
            return refused("Quota below usage") if len(updates) == 2 else None

        self.upstream.fail["update_api_key"] = second_update_refused
        before = self.plan.mailboxes_per_domain
        self.plan.mailboxes_per_domain = 1
        self.commit_refused(EmbouxValidationError)
        # the key sent first is put back upstream: what it had last
        self.assertEqual(sorted(updates[:2]), sorted([first_token, second_token]))
        self.assertEqual(updates[2], updates[0])
        self.assertEqual(self.upstream.keywords[-1]["mailboxes_per_domain"], before)
        self.assertEqual(self.plan.mailboxes_per_domain, before)
        self.assertEqual(
            (first.mailboxes_per_domain, second.mailboxes_per_domain), (before, before)
        )

    def test_a_plans_later_reader_goes_with_its_refused_change(self):
        """A key moved onto a plan whose change waits upstream was given
        that change's quotas: it waits behind it, and is taken back with
        it, or the upstream would keep quotas this side no longer has."""
        before = self.plan.mailboxes_per_domain
        other_plan = self.plan.copy(
            {"name": "Other plan", "mailboxes_per_domain": before + 1}
        )
        other = self.make_tenant("Other", plan=other_plan)
        self.Key._emboux_generate({"partner_id": self.tenant.id})
        key, token = self.Key._emboux_generate({"partner_id": other.id})
        self.commit()
        self.upstream.fail["update_api_key"] = ec.EmbouxUnavailable("down")
        self.plan.mailboxes_per_domain = before + 5
        self.commit()
        self.upstream.fail.clear()
        self.upstream.calls.clear()
        other.emboux_plan_id = self.plan
        self.commit()
        self.assertEqual(self.called(), [])  # behind the plan's change
        self.upstream.fail["update_api_key"] = refused("Quota below usage")
        self.Event.search([("state", "=", "pending")]).action_retry()
        self.assertEqual(self.plan.mailboxes_per_domain, before)
        self.assertEqual(other.emboux_plan_id, other_plan)
        self.assertEqual(key.mailboxes_per_domain, other_plan.mailboxes_per_domain)
        self.assertNotIn(token, [args[0] for _name, args in self.upstream.calls])

    def test_a_tenant_waits_behind_its_own_earlier_change_only(self):
        other = self.make_tenant("Other")
        self.upstream.fail["create_domain"] = lambda name, *a, **k: (
            ec.EmbouxUnavailable("down") if name == "first.example" else None
        )
        first = self.make_domain("first.example")
        self.commit()
        second = self.make_domain("second.example")
        self.commit()
        self.make_domain("elsewhere.example", tenant=other)
        self.commit()
        # the other tenant went through; the same tenant's later save waits
        self.assertEqual(
            [args[0] for _name, args in self.upstream.calls],
            ["first.example", "elsewhere.example"],
        )
        self.assertEqual((first.sync_state, second.sync_state), ("pending", "pending"))
        self.upstream.fail.clear()
        self.upstream.calls.clear()
        (first | second).action_sync_retry()
        self.Event._cron_deliver()
        self.assertEqual(
            [args[0] for _name, args in self.upstream.calls],
            ["first.example", "second.example"],
        )
        self.assertEqual((first.sync_state, second.sync_state), ("synced", "synced"))

    def test_a_change_refused_later_is_taken_back_then(self):
        self.upstream.fail["create_domain"] = ec.EmbouxUnavailable("down")
        domain = self.make_domain("later.example")
        self.commit()
        self.upstream.fail["create_domain"] = refused("Domain quota exceeded")
        domain.action_sync_retry()
        self.Event._cron_deliver()
        self.assertFalse(domain.exists())
        event = self.Event.search([("name", "=", "later.example")])
        self.assertEqual(event.state, "error")
        self.assertIn("Domain quota exceeded", event.last_error)

    def test_a_change_refused_after_an_unanswered_try_is_undone_upstream(self):
        """Its first try may have landed (the refusal of the next may even
        come from it): its undoing is queued, as for any unanswered call."""
        self.upstream.fail["create_domain"] = self.upstream.no_answer
        domain = self.make_domain("landed.example")
        self.commit()
        self.upstream.fail["create_domain"] = refused("Domain quota exceeded")
        domain.action_sync_retry()
        self.assertFalse(domain.exists())
        create, undo = self.Event.search([("name", "=", "landed.example")], order="id")
        self.assertEqual((create.operation, create.state), ("domain_create", "error"))
        self.assertEqual((undo.operation, undo.state), ("domain_delete", "pending"))
        self.assertEqual(undo.undoes_id, create)

    def test_only_saves_made_behind_a_refused_one_go_with_it(self):
        """A save waiting behind the refused one and behind another save
        goes with the refused one; that other save, made before it, stays."""
        other = self.make_tenant("Other")
        self.Key._emboux_generate({"partner_id": other.id})
        self.commit()
        self.upstream.fail["create_domain"] = ec.EmbouxUnavailable("down")
        refused_one = self.make_domain("first.example")
        self.commit()
        before = self.make_domain("before.example", tenant=other)
        self.commit()
        refused_one.partner_id = other  # behind both, on their lanes
        self.commit()
        self.upstream.fail["create_domain"] = lambda name, *a, **k: (
            refused("Domain quota exceeded") if name == "first.example" else None
        )
        self.Event.search([("name", "=", "first.example")]).action_retry()
        self.assertFalse(refused_one.exists())
        states = self.Event.search([("name", "=", "first.example")], order="id")
        self.assertEqual(states.mapped("state"), ["error", "undone"])
        self.assertEqual(before.sync_state, "pending")
        self.Event.search([("name", "=", "before.example")]).action_retry()
        self.assertEqual(before.sync_state, "synced")

    def test_an_undoing_goes_before_a_save_numbered_before_it(self):
        """A save made while a refusal is being taken back is numbered
        before the undoing queued then, yet commits after it: the undoing
        still goes first, or the value it restores would overwrite the
        save's upstream."""
        self.make_domain("order.example")
        mailbox = self.Mailbox.create(
            {"email": "q@order.example", "password": "pw-q-123456", "quota_mb": 100}
        )
        self.commit()
        mailbox.quota_mb = 200
        self.commit()
        delivered = self.Event.search([("operation", "=", "mailbox_quota")])
        self.upstream.fail["set_quota"] = ec.EmbouxUnavailable("down")
        mailbox.quota_mb = 300
        self.commit()
        save = self.Event.search([("state", "=", "pending")])
        self.env["emboux.mail.sync.delivery"]._emboux_queue_inverse(
            delivered, delivered._emboux_inverse(), ec.EmbouxUnavailable("down")
        )
        undoing = self.Event.search([("undoes_id", "=", delivered.id)])
        self.assertGreater(undoing.id, save.id)
        self.upstream.fail.clear()
        self.upstream.calls.clear()
        (save | undoing).action_retry()  # the save, numbered first, is tried first
        save.action_retry()
        self.assertEqual(
            self.upstream.calls,
            [
                ("set_quota", ("q@order.example", 100)),
                ("set_quota", ("q@order.example", 300)),
            ],
        )
        self.assertEqual((save | undoing).mapped("state"), ["done", "done"])

    def test_a_save_committed_while_its_base_was_taken_back_goes_too(self):
        """The sender taking a refusal back looked for the saves behind it
        before this one committed: undoing the refused save here finds it
        and takes it back first."""
        self.upstream.fail["create_domain"] = ec.EmbouxUnavailable("down")
        domain = self.make_domain("base.example")
        self.commit()
        refused_one = self.Event.search([("name", "=", "base.example")])
        alias = self.Alias.create(
            {"source": "x@base.example", "destination": "y@x.org"}
        )
        self.env.cr.flush()
        self.env.cr.postcommit.clear()  # committed; its own delivery comes later
        save = self.Event.search([("name", "=", "x@base.example")])
        self.assertEqual(save.state, "pending")
        # what the sender did, without seeing the alias's save yet
        refused_one._emboux_close("error", "Domain quota exceeded")
        self.env["emboux.mail.sync.delivery"]._emboux_do_here(
            [("take_back", refused_one.batch)]
        )
        self.assertFalse(domain.exists() or alias.exists())
        self.assertEqual(save.state, "undone")
        self.assertIn("an earlier change", save.last_error)
        self.assertIn("Domain quota exceeded", save.last_error)

    def test_a_resumed_save_refused_takes_back_its_earlier_steps(self):
        """A save half delivered when the upstream stopped answering is sent
        on later; refused then, the steps delivered the first time are
        undone upstream too, not only here."""
        self.upstream.fail["suspend"] = ec.EmbouxUnavailable("down")
        domain = self.make_domain("resumed.example")
        domain.action_suspend()
        self.commit()
        self.assertEqual(self.called(), ["create_domain", "suspend"])
        self.upstream.fail["suspend"] = refused("Domain is locked")
        domain.action_sync_retry()
        self.Event._cron_deliver()
        self.assertEqual(
            self.called(), ["create_domain", "suspend", "suspend", "delete_domain"]
        )
        self.assertFalse(domain.exists())
        events = self.Event.search([("name", "=", "resumed.example")], order="id")
        self.assertEqual(events.mapped("state"), ["undone", "error"])

    def test_saves_waiting_behind_a_refused_one_go_with_it(self):
        self.upstream.fail["create_domain"] = ec.EmbouxUnavailable("down")
        domain = self.make_domain("behind.example")
        self.commit()
        alias = self.Alias.create(
            {"source": "x@behind.example", "destination": "y@x.org"}
        )
        self.commit()  # queued behind the domain, in its lane
        self.assertEqual(self.called(), ["create_domain"])
        self.upstream.fail["create_domain"] = refused("Domain quota exceeded")
        domain.action_sync_retry()
        # the alias never went upstream, and nothing of either save stays
        self.assertEqual(self.called(), ["create_domain", "create_domain"])
        self.assertFalse(domain.exists() or alias.exists())
        events = self.Event.search([("name", "like", "behind.example")], order="id")
        self.assertEqual(events.mapped("state"), ["error", "undone"])
        self.assertIn("an earlier change", events[1].last_error)

    def test_a_save_taken_back_by_another_sender_keeps_its_journal(self):
        """The sender that takes a waiting save back undoes it here once its
        outbox committed; the save's own request, finding it closed in
        between, must leave it the journal to undo it from."""
        self.upstream.fail["create_domain"] = ec.EmbouxUnavailable("down")
        self.make_domain("closed.example")
        self.commit()
        alias = self.Alias.create(
            {"source": "x@closed.example", "destination": "y@x.org"}
        )
        self.env.cr.flush()
        batch = self.env.cr.postcommit.data["emboux_mail.sync"]["batch"]
        self.env.cr.postcommit.clear()
        events = self.Event.search([("batch", "=", batch)])
        events._emboux_close("undone", "Taken back: an earlier change was refused")
        Delivery = self.env["emboux.mail.sync.delivery"]
        error = Delivery._emboux_deliver_locked(batch, {}, False, [])
        self.assertIn("an earlier change", str(error))
        Undo = self.env["emboux.mail.sync.undo"].sudo()
        Undo._gc_orphans()  # the daily vacuum, running meanwhile
        self.assertTrue(Undo.search_count([("batch", "=", batch)]))
        Delivery._emboux_do_here([("take_back", batch)])
        self.assertFalse(alias.exists())
        self.assertFalse(Undo.search_count([("batch", "=", batch)]))

    def test_the_vacuum_removes_journals_left_behind(self):
        self.make_domain("left.example")
        self.env.cr.flush()
        batch = self.env.cr.postcommit.data["emboux_mail.sync"]["batch"]
        self.env.cr.postcommit.clear()  # its delivery never ran (a crash)
        self.Event.search([("batch", "=", batch)])._emboux_close("error", "lost")
        Undo = self.env["emboux.mail.sync.undo"].sudo()
        journal = Undo.search([("batch", "=", batch)])
        self.assertTrue(journal)
        Undo._gc_orphans()
        self.assertTrue(journal.exists())
        self.env.cr.execute(
            "UPDATE emboux_mail_sync_event SET write_date = now() - interval '2 "
            "hours' WHERE batch = %s",
            [batch],
        )
        Undo._gc_orphans()
        self.assertFalse(journal.exists())

    def test_a_delivered_delete_stands_when_a_later_step_is_refused(self):
        domain = self.make_domain("stand.example")
        mailbox = self.Mailbox.create(
            {"email": "s@stand.example", "password": "pw-s-123456"}
        )
        self.commit()
        self.upstream.calls.clear()
        self.upstream.fail["delete_domain"] = refused("Domain is locked")
        # one save: the mailbox's deletion is sent first and cannot be undone
        mailbox.unlink()
        domain.unlink()
        self.commit_refused(EmbouxValidationError)
        self.assertEqual(self.called(), ["delete_mailbox", "delete_domain"])
        self.assertTrue(domain.exists())
        self.assertFalse(mailbox.exists())
        self.assertEqual(domain.mailbox_count, 0)

    def test_a_scheduled_jobs_refused_change_does_not_fail_the_job(self):
        self.upstream.fail["create_domain"] = refused("Domain quota exceeded")
        as_cron = self.Domain.with_context(cron_id=1)
        domain = as_cron.create({"name": "cron.example", "partner_id": self.tenant.id})
        self.commit()  # no exception: the refusal is on the outbox
        self.assertFalse(domain.exists())
        event = self.Event.search([("name", "=", "cron.example")])
        self.assertEqual(event.state, "error")

    def test_a_tenant_is_renamed_here_and_upstream(self):
        key, token = self.Key._emboux_generate({"partner_id": self.tenant.id})
        domain = self.make_domain("renamed.example")
        self.commit()
        old = self.tenant.emboux_partner_ref
        with self.assertRaises(EmbouxValidationError):
            self.tenant.emboux_partner_ref = "acme_new"
        self.upstream.calls.clear()
        wizard = self.env["emboux.mail.tenant.rename"].create(
            {"partner_id": self.tenant.id, "new_ref": "acme_new"}
        )
        wizard.action_rename()
        self.commit()
        self.assertEqual(
            self.upstream.calls,
            [
                ("delete_api_key", (token,)),
                ("create_api_key", (token, "acme_new")),
                ("set_owner", ("renamed.example", "acme_new")),
            ],
        )
        self.assertEqual(self.tenant.emboux_partner_ref, "acme_new")
        # refused at its last step: the old name everywhere again
        self.upstream.calls.clear()
        self.upstream.fail["set_owner"] = lambda name, ref: (
            refused("Not allowed") if ref == "acme_back" else None
        )
        self.tenant._emboux_rename_ref("acme_back")
        self.commit_refused(EmbouxValidationError)
        self.assertEqual(self.tenant.emboux_partner_ref, "acme_new")
        self.assertEqual(
            [name for name, _args in self.upstream.calls],
            [
                "delete_api_key",
                "create_api_key",
                "set_owner",
                "delete_api_key",
                "create_api_key",
            ],
        )
        self.assertEqual(self.upstream.calls[-1][1], (token, "acme_new"))
        self.assertTrue(old and domain.exists() and key.exists())
