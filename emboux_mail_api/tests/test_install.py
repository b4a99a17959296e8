from odoo.tests import TransactionCase, tagged


@tagged("post_install", "-at_install")
class TestInstall(TransactionCase):
    def test_installed_on_top_of_emboux_mail(self):
        module = self.env["ir.module.module"].search([("name", "=", "emboux_mail_api")])
        self.assertEqual(module.state, "installed")
        self.assertIn("emboux_mail", module.dependencies_id.mapped("name"))
