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
