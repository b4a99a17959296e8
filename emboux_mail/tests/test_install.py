from odoo.tests import TransactionCase, tagged


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
