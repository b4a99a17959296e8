from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from ..exceptions import EmbouxQuotaError, EmbouxUserError, EmbouxValidationError
from ..services import emboux_client as ec
from .common import EmbouxMailCase, FakeDns
from .test_sync import ConnectedCase, FakeListingUpstream


@tagged("post_install", "-at_install")
class TestDomain(EmbouxMailCase):
    def test_name_is_normalised(self):
        domain = self.make_domain("  Bücher.Example.  ")
        self.assertEqual(domain.name, "xn--bcher-kva.example")
        self.assertEqual(
            domain.partner_id.emboux_partner_ref, f"partner_{self.tenant.id}"
        )

    def test_invalid_names_name_field_and_value(self):
        for bad in [
            "",
            "   ",
            "localhost",
            "-bad.com",
            "bad-.com",
            "a..b.com",
            "exa mple.com",
            "x" * 64 + ".com",
            "example.123",
            "under_score.com",
            "'; DROP TABLE emboux_mail_domain; --.com",
        ]:
            with (
                self.subTest(bad=bad),
                self.assertRaises(EmbouxValidationError) as raised,
            ):
                self.make_domain(bad)
            self.assertEqual(raised.exception.status, 422)
            self.assertIn("Domain:", str(raised.exception))
            self.assertIn(repr(bad), str(raised.exception))
        with self.assertRaises(EmbouxValidationError):
            self.Domain.create({"name": False, "partner_id": self.tenant.id})

    def test_duplicate_refused_whatever_the_spelling(self):
        self.make_domain("bücher.example")
        for same in ["bücher.example", "BÜCHER.EXAMPLE.", "xn--bcher-kva.example"]:
            with (
                self.subTest(same=same),
                self.assertEmbouxError(
                    EmbouxValidationError, "Domain already exists", 400
                ),
            ):
                self.make_domain(same)
        with self.assertEmbouxError(
            EmbouxValidationError, "Domain already exists", 400
        ):
            self.Domain.create(
                [{"name": "twice.com", "partner_id": self.tenant.id}] * 2
            )

    def test_domain_quota_and_counter(self):
        domains = self.make_domain("a.com") | self.make_domain("b.com")
        self.assertEqual(self.key.domains_used, 2)
        self.make_domain("c.com")
        with self.assertEmbouxError(
            EmbouxQuotaError, "Domain quota exceeded: 3/3", 403
        ):
            self.make_domain("d.com")
        self.assertEqual(self.key.domains_used, 3)
        domains.unlink()
        self.assertEqual(self.key.domains_used, 1)
        self.assertEqual(self.tenant.emboux_domain_count, 1)
        self.make_domain("d.com")
        self.assertEqual(self.key.domains_used, 2)

    def test_zero_means_unlimited(self):
        self.key.write({"quota_override": True, "domains_allowed": 0})
        for index in range(5):
            self.make_domain(f"d{index}.com")
        self.assertEqual(self.key.domains_used, 5)

    def test_cascade_delete(self):
        domain = self.make_domain()
        mailbox = self.Mailbox.create({"email": "a@example.com", "password": "x" * 10})
        alias = self.Alias.create(
            {"source": "@example.com", "destination": "a@example.com"}
        )
        domain.unlink()
        self.assertFalse(mailbox.exists())
        self.assertFalse(alias.exists())
        self.assertEqual(self.key.domains_used, 0)

    def test_suspend_and_activate(self):
        domain = self.make_domain()
        domain.action_suspend()
        self.assertTrue(domain.suspended)
        domain.action_activate()
        self.assertFalse(domain.suspended)

    def test_rename_refused(self):
        domain = self.make_domain()
        with self.assertRaises(EmbouxUserError):
            domain.name = "other.com"

    def test_owner_transfer_moves_counters(self):
        other = self.make_tenant("Other")
        domain = self.make_domain()
        with self.assertEmbouxError(
            EmbouxUserError,
            f"No active api_key for partner_ref=partner_{other.id}",
            400,
        ):
            domain._emboux_transfer_owner(other)
        other_key, _token = self.Key._emboux_generate({"partner_id": other.id})
        mailbox = self.Mailbox.create({"email": "a@example.com", "password": "x" * 10})
        previous = domain._emboux_transfer_owner(other)
        self.assertEqual(previous, self.tenant)
        self.assertEqual(domain.partner_id, other)
        self.assertEqual(mailbox.partner_id, other)
        self.assertEqual((self.key.domains_used, other_key.domains_used), (0, 1))
        # an expired or revoked key does not count as active
        other_key.active = False
        with self.assertRaises(EmbouxUserError):
            self.make_domain("z.com")._emboux_transfer_owner(other)

    def test_owner_transfer_to_nobody_orphans(self):
        domain = self.make_domain()
        domain._emboux_transfer_owner(self.env["res.partner"])
        self.assertFalse(domain.partner_id)
        self.assertEqual(self.key.domains_used, 0)

    def test_writing_the_owner_applies_the_transfer_rules(self):
        other = self.make_tenant("Other")
        domain = self.make_domain()
        with self.assertRaises(EmbouxUserError):
            domain.partner_id = other

    def test_subdomain_linked_to_wildcard_parent(self):
        self.key.write({"quota_override": True, "domains_allowed": 0})
        parent = self.make_domain("parent.com")
        plain = self.make_domain("x.parent.com")
        self.assertFalse(plain.parent_id)
        parent.is_wildcard = True
        sub = self.make_domain("shop.parent.com")
        deep = self.make_domain("a.b.parent.com")
        self.assertEqual(sub.parent_id, parent)
        self.assertEqual(deep.parent_id, parent)
        with self.assertRaises(EmbouxValidationError):
            self.make_domain("other.net").parent_id = parent

    def test_hosting_user_cannot_manage_keys_or_plans(self):
        user = new_test_user(
            self.env, login="hosting_user", groups="emboux_mail.group_emboux_mail_user"
        )
        domain = self.make_domain().with_user(user)
        self.assertEqual(domain.name, "example.com")
        with self.assertRaises(AccessError):
            self.Key.with_user(user).create({"partner_id": self.tenant.id})
        with self.assertRaises(AccessError):
            self.plan.with_user(user).write({"mailboxes_per_domain": 99})

    def test_other_company_domains_are_hidden(self):
        company_b = self.env["res.company"].create({"name": "Company B"})
        domain_b = self.Domain.create(
            {
                "name": "b-only.com",
                "partner_id": self.tenant.id,
                "company_id": company_b.id,
            }
        )
        user = new_test_user(
            self.env, login="hosting_a", groups="emboux_mail.group_emboux_mail_user"
        )
        self.assertFalse(self.Domain.with_user(user).search([("id", "=", domain_b.id)]))


@tagged("post_install", "-at_install")
class TestDomainBackend(FakeDns, EmbouxMailCase):
    """What the backend shows of domains and customers: delete wording,
    Check DNS's counts, the DNS health history, the Overview's figures."""

    def make_mailbox(self, email, **vals):
        return self.Mailbox.create({"email": email, "password": "x" * 10, **vals})

    def test_delete_confirmation_names_what_goes_with_the_domains(self):
        domain = self.make_domain()
        self.make_mailbox("a@example.com")
        self.Alias.create({"source": "b@example.com", "destination": "a@example.com"})
        self.assertEqual(
            domain.emboux_delete_confirmation(),
            "Delete the domain example.com? Its mailboxes (1) and aliases (1) "
            "are deleted with it.",
        )
        both = domain | self.make_domain("other.com")
        self.make_mailbox("c@other.com")
        self.assertEqual(
            both.emboux_delete_confirmation(),
            "Delete these 2 domains? Their mailboxes (2) and aliases (1) are "
            "deleted with them.",
        )

    def test_check_dns_on_many_domains_counts_each_health(self):
        """The list's Check DNS action checks the selected domains and
        counts them by health."""
        domains = self.make_domain("a.com") | self.make_domain("b.com")
        other = self.make_domain("not-selected.com")
        check = self.env.ref("emboux_mail.emboux_mail_domain_check_dns_action")
        with self.fake_dns({}):
            action = check.with_context(
                active_model=domains._name, active_ids=domains.ids
            ).run()
        self.assertEqual(action["tag"], "display_notification")
        self.assertEqual(action["params"]["message"], "2 domains checked. Failing: 2")
        self.assertEqual(action["params"]["type"], "warning")
        self.assertEqual(other.dns_state, "unchecked")

    def test_dns_health_kept_per_domain_and_day(self):
        domain = self.make_domain()
        History = self.env["emboux.mail.dns.health"]
        with self.fake_dns({}):
            domain._emboux_check_dns()
            domain._emboux_check_dns()
        rows = History.search([("domain_id", "=", domain.id)])
        self.assertEqual(len(rows), 1)
        self.assertEqual(
            (rows.date, rows.state, rows.partner_id, rows.company_id),
            (domain.dns_checked_at.date(), "error", self.tenant, domain.company_id),
        )
        # the same day's row follows the last check
        domain.dns_state = "ok"
        History._emboux_record(domain)
        self.assertEqual(rows.state, "ok")
        old = History.create(
            {
                "domain_id": domain.id,
                "company_id": domain.company_id.id,
                "date": fields.Date.today() - timedelta(days=91),
                "state": "error",
                "checked_at": fields.Datetime.now() - timedelta(days=91),
            }
        )
        self.assertEqual(History._emboux_gc(), 1)
        self.assertFalse(old.exists())
        self.assertTrue(rows.exists())

    def test_scheduled_dns_check_reports_progress_and_forgets_old_days(self):
        for name in ("a.com", "b.com", "c.com"):
            self.make_domain(name)
        self.env["ir.config_parameter"].set_param("emboux_mail.dns_batch_size", "2")
        cron = self.env.ref("emboux_mail.ir_cron_emboux_mail_dns_check")
        progress = self.env["ir.cron.progress"].create({"cron_id": cron.id})
        Domain = self.Domain.with_context(ir_cron_progress_id=progress.id)
        with (
            self.fake_dns({}),
            patch.object(type(self.env["emboux.mail.dns.health"]), "_emboux_gc") as gc,
        ):
            Domain._cron_check_dns()
            self.assertEqual((progress.done, progress.remaining), (2, 1))
            gc.assert_not_called()
            Domain._cron_check_dns()
            self.assertEqual((progress.done, progress.remaining), (1, 0))
            gc.assert_called_once()

    def test_domains_and_mailboxes_per_plan(self):
        """The reports group domains by their customer's plan."""
        self.make_domain("a.com")
        self.make_domain("b.com")
        self.make_mailbox("m@a.com")
        groups = self.Domain._read_group(
            [("partner_id", "=", self.tenant.id)],
            ["plan_id"],
            ["__count", "mailbox_count:sum"],
        )
        self.assertEqual(groups, [(self.plan, 2, 1)])

    def test_partner_shows_usage_against_its_quotas(self):
        self.make_domain("a.com")
        self.make_domain("b.com")
        self.make_mailbox("m@a.com")
        self.make_mailbox("n@a.com")
        self.Alias.create({"source": "x@a.com", "destination": "m@a.com"})
        tenant = self.tenant
        self.assertEqual(
            (
                tenant.emboux_domain_count,
                tenant.emboux_domains_allowed,
                tenant.emboux_mailbox_count,
                tenant.emboux_mailboxes_per_domain,
                tenant.emboux_mailbox_capacity,
                tenant.emboux_aliases_per_mailbox,
                tenant.emboux_alias_count,
                tenant.emboux_api_key_count,
                tenant.emboux_quota_mb,
            ),
            (2, 3, 2, 2, 4, 2, 1, 1, 1000),
        )
        # one mailbox without quota: the customer's storage is unlimited
        self.make_mailbox("o@b.com", quota_mb=0)
        tenant.invalidate_recordset()
        self.assertEqual(tenant.emboux_quota_mb, 0)
        # the key's quotas come first, the plan's without key
        self.key.write({"quota_override": True, "domains_allowed": 0})
        tenant.invalidate_recordset()
        self.assertEqual(tenant.emboux_domains_allowed, 0)
        newcomer = self.make_tenant("Newcomer")
        self.assertEqual(
            (newcomer.emboux_domains_allowed, newcomer.emboux_mailbox_capacity),
            (3, 0),
        )

    def test_overview_counts_what_the_user_may_see(self):
        company_b = self.env["res.company"].create({"name": "Company B"})
        user = new_test_user(
            self.env, login="overview", groups="emboux_mail.group_emboux_mail_user"
        )
        user.company_ids |= company_b
        Overview = self.env["emboux.mail.overview"].with_user(user)
        company_a = Overview.with_context(allowed_company_ids=self.env.company.ids)
        both = Overview.with_context(
            allowed_company_ids=[self.env.company.id, company_b.id]
        )

        def counts(overview):
            return {
                card["key"]: card["count"]
                for section in overview.emboux_overview()["sections"]
                for card in section["cards"]
            }

        before, before_both = counts(company_a), counts(both)
        self.make_tenant("Newcomer")._emboux_tenant()
        self.make_domain("a.com")
        self.make_domain("b.com").action_suspend()
        self.Domain.create(
            {
                "name": "b-only.com",
                "partner_id": self.tenant.id,
                "company_id": company_b.id,
            }
        )
        self.make_mailbox("m@a.com")
        overview = company_a.emboux_overview()
        self.assertEqual(
            [section["key"] for section in overview["sections"]],
            ["domains", "dns", "mailboxes", "customers"],
        )
        cards = {
            card["key"]: card
            for section in overview["sections"]
            for card in section["cards"]
        }
        added = {key: card["count"] - before[key] for key, card in cards.items()}
        self.assertEqual(
            {key: count for key, count in added.items() if count},
            {
                "domains": 2,
                "suspended": 1,
                "dns_unchecked": 2,
                "mailboxes": 1,
                "customers": 1,
            },
        )
        self.assertEqual(counts(both)["domains"] - before_both["domains"], 3)
        # a card opens the list of what it counted
        suspended = cards["suspended"]["action"]
        self.assertEqual(suspended["res_model"], "emboux.mail.domain")
        self.assertIn(
            "b.com",
            self.Domain.with_user(user)
            .with_context(allowed_company_ids=self.env.company.ids)
            .search(suspended["domain"])
            .mapped("name"),
        )
        reports = [report["name"] for report in overview["reports"]]
        self.assertIn("DNS Health over Time", reports)
        self.assertIn("Domains per Plan", reports)
        # connected to an upstream: its failing changes have a card
        self.env["ir.config_parameter"].set_param(
            "emboux_mail.upstream_url", "http://upstream.invalid"
        )
        self.assertEqual(company_a.emboux_overview()["sections"][-1]["key"], "sync")


@tagged("post_install", "-at_install")
class TestReconcileProgress(ConnectedCase):
    """The reconcile tells the scheduler how far it is, and a run from the
    menu ends with its counts."""

    upstream_class = FakeListingUpstream

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant._emboux_tenant()
        cls.key.sudo().with_context(emboux_sync_skip=True).write(
            {"upstream_token_encrypted": cls.Key._emboux_encrypt("tenant-token-1")}
        )

    def setUp(self):
        super().setUp()
        self.upstream.domains = [{"id": 1, "name": "up.example"}]
        self.upstream.owned = {"tenant-token-1": {"up.example"}}
        cron = self.env.ref("emboux_mail.ir_cron_emboux_mail_reconcile")
        self.progress = self.env["ir.cron.progress"].create({"cron_id": cron.id})
        self.Reconcile = self.env["emboux.mail.reconcile"].with_context(
            ir_cron_progress_id=self.progress.id
        )

    def notified(self):
        """Run the scheduled reconcile: the progress it notified, in order."""
        cron = type(self.env["ir.cron"])
        with patch.object(
            cron, "_notify_progress", autospec=True, side_effect=cron._notify_progress
        ) as notify:
            self.Reconcile._cron_reconcile()
        return [(c.kwargs["done"], c.kwargs["remaining"]) for c in notify.mock_calls]

    def test_each_tenant_and_kind_is_a_step(self):
        # one tenant key, then domains, mailboxes, aliases and keys
        self.assertEqual(self.notified(), [(1, 4), (2, 3), (3, 2), (4, 1), (5, 0)])
        self.assertEqual((self.progress.done, self.progress.remaining), (5, 0))

    def test_unreadable_upstream_leaves_nothing_remaining(self):
        def unavailable(**_kwargs):
            raise ec.EmbouxUnavailable("down")

        self.upstream.list_aliases = unavailable
        self.assertEqual(self.notified(), [(1, 4), (1, 0)])

    def test_run_from_the_menu_says_what_it_did(self):
        action = self.env["emboux.mail.reconcile"].action_reconcile_now()
        self.assertEqual(action["tag"], "display_notification")
        params = action["params"]
        self.assertEqual(params["type"], "success")
        self.assertIn("Imported domains: 1,", params["message"])
        self.assertEqual(params["next"]["res_model"], "emboux.mail.reconcile")
        run = self.env["emboux.mail.reconcile"].browse(params["next"]["res_id"])
        self.assertEqual(run.imported_domains, 1)
