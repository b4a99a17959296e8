"""The audit trail: a change through the backend, the portal or a scheduled
action writes exactly one entry naming its actor (the REST API's door is
tested in emboux_mail_api); no password or token ever reaches an entry; old
entries are vacuumed; a customer sees its own tenant's trail in the portal."""

import json
from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.tests import new_test_user, tagged

from .test_portal import EmbouxPortalCase

PASSWORDS = ("Audit-Secret-Pass-1", "Audit-Secret-Pass-2", "Audit-Secret-Pass-3")
TOKENS = ("emb_audit_token_0000000001", "emb_audit_token_0000000002")


@tagged("post_install", "-at_install")
class TestAudit(EmbouxPortalCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Audit = cls.env["emboux.mail.audit"]

    def setUp(self):
        super().setUp()
        self.last_id = self.Audit.search([], limit=1).id or 0

    def new_entries(self):
        """The entries written since the test started, oldest first."""
        self.env.invalidate_all()
        return self.Audit.search([("id", ">", self.last_id)], order="id")

    # -- one entry per change, through each door ---------------------------------
    def test_backend_change_is_one_entry(self):
        manager = new_test_user(
            self.env,
            login="audit_manager",
            groups="base.group_user,emboux_mail.group_emboux_mail_manager",
        )
        self.authenticate(manager.login, manager.login)
        self.make_jsonrpc_request(
            "/web/dataset/call_kw",
            {
                "model": "emboux.mail.mailbox",
                "method": "write",
                "args": [self.mailbox.ids, {"quota_mb": 750}],
                "kwargs": {},
            },
        )
        self.assertRecordValues(
            self.new_entries(),
            [
                {
                    "action": "write",
                    "res_model": "emboux.mail.mailbox",
                    "res_id": self.mailbox.id,
                    "name": "info@acme.test",
                    "partner_id": self.acme.id,
                    "channel": "backend",
                    "user_id": manager.id,
                    "api_key_id": False,
                    "api_key_ref": False,
                    "by_customer": False,
                    "address": "127.0.0.1",
                    "changes": {"quota_mb": {"old": 500, "new": 750}},
                    "secret_changed": False,
                }
            ],
        )

    def test_portal_changes_are_one_entry_each(self):
        self.login(self.acme_user)
        response = self.post(
            self.domain_url(tail="/alias/new"),
            {"alias_local_part": "sales", "destination": "info@acme.test"},
        )
        self.assertEqual(response.status_code, 303, response.text[:2000])
        alias = self.Alias.search([("source", "=", "sales@acme.test")])
        created = self.new_entries()
        self.assertRecordValues(
            created,
            [
                {
                    "action": "create",
                    "res_model": "emboux.mail.alias",
                    "res_id": alias.id,
                    "name": "sales@acme.test",
                    "partner_id": self.acme.id,
                    "channel": "portal",
                    "user_id": self.acme_user.id,
                    "by_customer": True,
                    "address": "127.0.0.1",
                }
            ],
        )
        self.assertEqual(
            created.changes,
            {
                "source": {"new": "sales@acme.test"},
                "destination": {"new": "info@acme.test"},
                "domain_id": {"new": "acme.test"},
            },
        )
        self.last_id = created.id
        response = self.post(self.domain_url(tail=f"/alias/{alias.id}/delete"))
        self.assertEqual(response.status_code, 303, response.text[:2000])
        self.assertRecordValues(
            self.new_entries(),
            [
                {
                    "action": "unlink",
                    "res_id": alias.id,
                    "name": "sales@acme.test",
                    "partner_id": self.acme.id,
                    "channel": "portal",
                    "user_id": self.acme_user.id,
                    "changes": False,
                }
            ],
        )

    def test_scheduled_action_change_is_one_entry(self):
        self.env["emboux.mail.outbound.counter"].create(
            {
                "domain_id": self.domain.id,
                "delivered_count": 100,
                "bounce_count": 10,
                "guard_tripped": True,
            }
        )
        cron = self.env.ref("emboux_mail.ir_cron_emboux_mail_bounce_guard")
        cron.method_direct_trigger()
        self.assertRecordValues(
            self.new_entries(),
            [
                {
                    "action": "write",
                    "res_model": "emboux.mail.domain",
                    "res_id": self.domain.id,
                    "channel": "cron",
                    "user_id": cron.user_id.id,
                    "address": False,
                    "changes": {
                        "outbound_status": {"old": "active", "new": "suspended"}
                    },
                }
            ],
        )
        self.assertEqual(
            self.new_entries().changes_display, "Sending: Active → Suspended"
        )

    def test_bookkeeping_and_unchanged_values_make_no_entry(self):
        self.key.write({"last_used_at": fields.Datetime.now()})
        self.mailbox.write({"quota_mb": self.mailbox.quota_mb})
        self.domain.write({"dns_state": "ok", "dns_checked_at": fields.Datetime.now()})
        self.alias.write({"sync_state": "pending", "sync_error": False})
        self.assertFalse(self.new_entries())

    def test_one_call_on_many_records_is_one_insert(self):
        inserts = []
        execute = self.env.cr.execute

        def spy(query, params=None, log_exceptions=True):
            if 'INSERT INTO "emboux_mail_audit"' in str(query):
                inserts.append(query)
            return execute(query, params, log_exceptions)

        with patch.object(self.env.cr, "execute", spy):
            aliases = self.Alias.create(
                [
                    {"source": f"team{n}@acme.test", "destination": f"p{n}@example.org"}
                    for n in range(2)
                ]
            )
            aliases.write({"destination": "boss@example.org"})
            self.env.flush_all()
        self.assertEqual(len(inserts), 2)
        entries = self.new_entries()
        self.assertEqual(
            [(entry.action, entry.res_id) for entry in entries],
            [(action, alias.id) for action in ("create", "write") for alias in aliases],
        )

    def test_changes_read_with_labels(self):
        self.key.action_revoke()
        self.mailbox.quota_mb = 0
        self.assertEqual(
            self.new_entries().mapped("changes_display"),
            ["Active: Yes → No", "Storage Quota (MB): 500 → 0"],
        )

    # -- secrets -----------------------------------------------------------------
    def test_no_password_nor_token_in_any_entry(self):
        mailbox = self.Mailbox.create(
            {"email": "vault@acme.test", "password": PASSWORDS[0]}
        )
        mailbox.password = PASSWORDS[1]
        self.login(self.acme_user)
        url = self.domain_url(tail=f"/mailbox/{mailbox.id}/password")
        data = {"password": PASSWORDS[2], "password_confirm": PASSWORDS[2]}
        self.assertEqual(self.post(url, data).status_code, 303)
        key = self.Key.create(
            {"name": "Audited", "partner_id": self.acme.id, "token": TOKENS[0]}
        )
        key.write({"token": TOKENS[1], "domains_allowed": 9})
        _new_key, generated = self.Key._emboux_generate({"partner_id": self.acme.id})
        entries = self.new_entries()
        self.assertEqual(
            [(e.res_model, e.action, e.secret_changed) for e in entries],
            [
                ("emboux.mail.mailbox", "create", True),
                ("emboux.mail.mailbox", "write", True),
                ("emboux.mail.mailbox", "write", True),
                ("emboux.mail.api.key", "create", True),
                ("emboux.mail.api.key", "write", True),
                ("emboux.mail.api.key", "create", True),
            ],
        )
        self.assertEqual(entries[1].channel, "cron")
        self.assertEqual(entries[2].channel, "portal")
        self.assertEqual(entries[4].changes, {"domains_allowed": {"old": 5, "new": 9}})
        secrets = (*PASSWORDS, *TOKENS, generated)
        # and no entry at all: the domains' verification tokens neither
        for entry in self.Audit.search([]):
            text = json.dumps(entry.read()[0], default=str)
            for secret in secrets:
                self.assertNotIn(secret, text)
            for name in entry.changes or {}:
                for part in ("password", "token", "secret", "private"):
                    self.assertNotIn(part, name)

    # -- retention -----------------------------------------------------------------
    def test_vacuum_keeps_the_retention(self):
        now = fields.Datetime.now()
        old, recent = self.Audit.create(
            [
                {"action": "write", "date": now - timedelta(days=days)}
                for days in (400, 300)
            ]
        )
        self.Audit._gc_old_entries()
        self.assertFalse(old.exists())
        self.assertTrue(recent.exists())
        params = self.env["ir.config_parameter"]
        params.set_param("emboux_mail.audit_retention_days", "0")
        self.Audit._gc_old_entries()
        self.assertTrue(recent.exists())
        params.set_param("emboux_mail.audit_retention_days", "200")
        self.Audit._gc_old_entries()
        self.assertFalse(recent.exists())

    # -- the portal's Activity page -------------------------------------------------
    def test_portal_shows_its_own_tenant_only(self):
        self.other_alias.destination = "sales@globex.test"
        self.login(self.acme_user)
        self.post(self.domain_url(tail="/retention"), {"retention_days": "30"})
        self.assertIn('href="/my/email/audit"', self.get("/my/email").text)
        page = self.get("/my/email/audit")
        self.assertEqual(page.status_code, 200)
        rows = self.texts(page, "o_emboux_audit_row")
        self.assertIn("acme.test", rows[0])
        self.assertIn("Keep Mail (days): 0 → 30", rows[0])
        self.assertIn(self.acme_user.name, rows[0])
        self.assertIn("127.0.0.1", rows[0])
        for name in ("info@acme.test", "contact@acme.test", "Acme shop"):
            self.assertTrue(any(name in row for row in rows), name)
        self.assertNotIn("globex", page.text.lower())
        self.assertEqual(self.texts(page, "breadcrumb-item")[1:], ["Email", "Activity"])

    def test_portal_page_without_entries(self):
        _company, user = self.make_tenant_user("Initech", "initech_portal")
        self.login(user)
        page = self.get("/my/email/audit")
        self.assertEqual(page.status_code, 200)
        self.assertFalse(self.texts(page, "o_emboux_audit_row"))
        self.assertEqual(len(self.texts(page, "o_emboux_audit_empty")), 1)
