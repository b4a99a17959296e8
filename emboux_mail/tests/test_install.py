from lxml import etree

from odoo.exceptions import ValidationError
from odoo.tests import Form, TransactionCase, tagged


@tagged("post_install", "-at_install")
class TestInstall(TransactionCase):
    def test_menu_reachable_by_hosting_users_only(self):
        menu = self.env.ref("emboux_mail.menu_emboux_mail_root")
        self.assertEqual(menu.name, "Email Hosting")
        user_group = self.env.ref("emboux_mail.group_emboux_mail_user")
        self.assertIn(user_group, menu.groups_id)

    def test_manager_implies_user(self):
        manager = self.env.ref("emboux_mail.group_emboux_mail_manager")
        user_group = self.env.ref("emboux_mail.group_emboux_mail_user")
        self.assertIn(user_group, manager.trans_implied_ids)
        self.assertIn(manager, self.env.ref("base.user_admin").groups_id)

    def test_asset_bundles_are_served_from_the_primary(self):
        """With --db_replica_host, Odoo would read a bundle it just
        generated through the replica, which may not have it yet."""
        [rule] = [
            rule
            for rule in self.env["ir.http"].routing_map().iter_rules()
            if rule.rule == "/web/assets/<string:unique>/<string:filename>"
        ]
        readonly = rule.endpoint.routing["readonly"]
        self.assertFalse(readonly(rule.endpoint.func.__self__))

    def test_dns_interval_is_the_scheduled_actions(self):
        """Settings show the interval the DNS check runs at, set it, and
        refuse 0 rather than ignore it."""
        cron = self.env.ref("emboux_mail.ir_cron_emboux_mail_dns_check")
        cron.write({"interval_number": 6, "interval_type": "hours"})
        Settings = self.env["res.config.settings"]
        form = Form(Settings)
        self.assertEqual(form.emboux_dns_interval_hours, 6)
        form.emboux_dns_interval_hours = 3
        form.save().execute()
        self.assertEqual((cron.interval_number, cron.interval_type), (3, "hours"))
        form = Form(Settings)
        form.emboux_dns_interval_hours = 0
        with self.assertRaises(ValidationError):
            form.save()

    def test_every_backend_view_loads(self):
        """Each list, form, kanban, search, graph and pivot view of the two
        addons renders for a hosting manager, with its fields readable."""
        views = (
            self.env["ir.model.data"]
            .search(
                [
                    ("module", "in", ("emboux_mail", "emboux_mail_api")),
                    ("model", "=", "ir.ui.view"),
                ]
            )
            .mapped(lambda data: self.env["ir.ui.view"].browse(data.res_id))
            .filtered(lambda view: view.type != "qweb" and view.mode == "primary")
        )
        self.assertGreater(len(views), 40)
        admin = self.env.ref("base.user_admin")
        for view in views:
            with self.subTest(view=view.xml_id):
                self.env[view.model].with_user(admin).get_views([(view.id, view.type)])

    def test_overview_opens_the_app(self):
        root = self.env.ref("emboux_mail.menu_emboux_mail_root")
        overview = self.env.ref("emboux_mail.emboux_mail_overview_action")
        self.assertEqual(root.action, overview)
        self.assertEqual(root.child_id.sorted("sequence")[:1].action, overview)
        self.assertEqual(overview.tag, "emboux_mail.overview")

    def test_settings_show_each_heading_once(self):
        """No setting repeats the title of its block or of the app."""
        arch = self.env["res.config.settings"].get_views([(False, "form")])["views"][
            "form"
        ]["arch"]
        app = etree.fromstring(arch).find(".//app[@name='emboux_mail']")
        fields = self.env["res.config.settings"].fields_get()
        titles = [app.get("string")] + [
            block.get("title") for block in app.iter("block")
        ]
        self.assertEqual(len(titles), len(set(titles)))
        labels = {
            fields[field.get("name")]["string"]
            for field in app.iter("field")
            if field.get("name") in fields
        }
        self.assertFalse(labels & set(titles))

    def test_quotas_are_named_alike_everywhere(self):
        labels = {
            (model, name): self.env[model]._fields[name].string
            for model, name in [
                ("emboux.mail.plan", "aliases_per_mailbox"),
                ("res.config.settings", "emboux_default_aliases_per_mailbox"),
                ("res.partner", "emboux_aliases_per_mailbox"),
            ]
        }
        self.assertEqual(set(labels.values()), {"Aliases per Mailbox"}, labels)

    def test_unlimited_default_quotas_can_be_saved(self):
        """Settings would drop a 0 and bring the default back (1 mailbox per
        domain): an unlimited quota is stored as 0."""
        form = Form(self.env["res.config.settings"])
        form.emboux_default_mailboxes_per_domain = 0
        form.emboux_default_aliases_per_mailbox = 0
        form.save().execute()
        quotas = self.env["emboux.mail.plan"]._default_quotas()
        self.assertEqual(
            (quotas["mailboxes_per_domain"], quotas["aliases_per_mailbox"]), (0, 0)
        )
        self.assertEqual(
            Form(self.env["res.config.settings"]).emboux_default_mailboxes_per_domain,
            0,
        )
