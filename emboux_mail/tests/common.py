import contextlib
from unittest.mock import patch

import dns.rdata
import dns.resolver

from odoo import SUPERUSER_ID, api
from odoo.sql_db import TestCursor
from odoo.tests import TransactionCase

from odoo.addons.base.tests.common import DISABLED_MAIL_CONTEXT

from ..services import dkim


def run_postcommit_hooks(test):
    """Test cursors drop their postcommit hooks, where connected mode sends
    a committed change upstream: run them, as a real cursor's COMMIT does."""
    commit = TestCursor.commit

    def commit_and_run_hooks(cursor):
        hooks, data = list(cursor.postcommit._funcs), dict(cursor.postcommit.data)
        commit(cursor)
        for hook in hooks:
            cursor.postcommit.add(hook)
        cursor.postcommit.data.update(data)
        cursor.postcommit.run()

    patcher = patch.object(TestCursor, "commit", commit_and_run_hooks)
    patcher.start()
    test.addCleanup(patcher.stop)


class FakeDns:
    """Answer the DNS checker from a dictionary, for the module tests (the
    end-to-end tests in ``tests/`` use a real DNS server)."""

    @contextlib.contextmanager
    def fake_dns(self, zone):
        """Answer DNS lookups from ``zone`` instead of the network:
        ``{(name, type): [record text]}``, or an exception class to raise;
        any other name is NXDOMAIN."""

        def resolve(resolver, name, rdtype, *args, **kwargs):
            answer = zone.get((str(name).rstrip("."), rdtype))
            if answer is None:
                raise dns.resolver.NXDOMAIN()
            if isinstance(answer, type):
                raise answer()
            return [dns.rdata.from_text("IN", rdtype, text) for text in answer]

        self.env["ir.config_parameter"].set_param(
            "emboux_mail.dns_nameservers", "127.0.0.1"
        )
        with patch.object(dns.resolver.Resolver, "resolve", resolve):
            yield

    def dkim_zone(self, name):
        """The zone entry that publishes the DKIM key domain ``name`` signs
        with, as its owner would copy it from the form."""
        domain = self.env["emboux.mail.domain"].sudo().search([("name", "=", name)])
        _type, record, value = domain._emboux_dkim_records()[0]
        text = " ".join(f'"{part}"' for part in dkim.txt_strings(value))
        return {(record, "TXT"): [text]}


class EmbouxHostingSetup:
    """Shortcuts to the hosting models and a plan, for any kind of case."""

    @classmethod
    def setup_hosting(cls, **quotas):
        cls.env = cls.env(context=dict(cls.env.context, **DISABLED_MAIL_CONTEXT))
        cls.Domain = cls.env["emboux.mail.domain"]
        cls.Mailbox = cls.env["emboux.mail.mailbox"]
        cls.Alias = cls.env["emboux.mail.alias"]
        cls.Key = cls.env["emboux.mail.api.key"]
        cls.plan = cls.env["emboux.mail.plan"].create(
            {"name": "Test plan", "quota_mb": 500, **quotas}
        )

    def assertNotStoredAnywhere(self, secret):
        """No text column of any table holds ``secret`` in clear."""
        self.env.flush_all()
        cr = self.env.cr
        cr.execute(
            """
            SELECT c.table_name, array_agg(c.column_name::text)
              FROM information_schema.columns c
              JOIN information_schema.tables t
                ON t.table_name = c.table_name AND t.table_schema = c.table_schema
             WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
               AND c.data_type IN ('character varying', 'text', 'jsonb')
             GROUP BY c.table_name
            """
        )
        found = []
        for table, columns in cr.fetchall():
            condition = " OR ".join(
                f'"{column}"::text LIKE %(pattern)s' for column in columns
            )
            cr.execute(
                f'SELECT 1 FROM "{table}" WHERE {condition} LIMIT 1',  # noqa: S608
                {"pattern": f"%{secret}%"},
            )
            if cr.fetchone():
                found.append(table)
        self.assertFalse(found, f"{secret!r} is stored in clear in {found}")


class CommittedWork:
    """For the cases about concurrent transactions, whose data must be
    committed for another transaction to see it."""

    def _committed(self, function):
        """Run ``function`` in a transaction of its own, committed on exit."""
        with self.registry.cursor() as cr:
            return function(api.Environment(cr, SUPERUSER_ID, {}))

    def _concurrent_env(self, cr):
        """An environment on ``cr`` usable from another thread: the loading
        registry holds the lock that looking it up by name takes, so the
        cursor is given its registry."""
        cr.transaction = api.Transaction(self.registry)
        return api.Environment(cr, SUPERUSER_ID, {})


class EmbouxMailCase(EmbouxHostingSetup, TransactionCase):
    """A plan, a tenant with an active key, and helpers to build on them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_hosting(
            domains_allowed=3, mailboxes_per_domain=2, aliases_per_mailbox=2
        )
        cls.tenant = cls.make_tenant("Acme")
        cls.key, cls.token = cls.Key._emboux_generate({"partner_id": cls.tenant.id})

    @classmethod
    def make_tenant(cls, name, plan=None):
        return cls.env["res.partner"].create(
            {"name": name, "is_company": True, "emboux_plan_id": (plan or cls.plan).id}
        )

    def make_domain(self, name="example.com", tenant=None):
        return self.Domain.create(
            {"name": name, "partner_id": (tenant or self.tenant).id}
        )

    @contextlib.contextmanager
    def assertEmbouxError(self, error_class, detail, status):
        """The rule raised ``error_class`` with the API's ``detail`` and
        ``status``."""
        with self.assertRaises(error_class) as raised:
            yield raised
        self.assertEqual(raised.exception.detail, detail)
        self.assertEqual(raised.exception.status, status)
