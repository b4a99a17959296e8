from odoo.tests import HttpCase, tagged


@tagged("post_install", "-at_install")
class TestBackendTour(HttpCase):
    def setUp(self):
        super().setUp()
        # a customer without plan or key gets one mailbox per domain
        self.env["ir.config_parameter"].sudo().set_param(
            "emboux_mail.default_mailboxes_per_domain", "1"
        )

    def test_backend_tour(self):
        self.start_tour("/odoo", "emboux_mail_backend_tour", login="admin")

        customer = self.env["res.partner"].search([("name", "=", "Tour Customer")])
        self.assertEqual(len(customer), 1)
        self.assertTrue(customer.is_company)
        self.assertTrue(customer.emboux_partner_ref)
        domain = self.env["emboux.mail.domain"].search(
            [("name", "=", "tour-example.com")]
        )
        self.assertEqual(len(domain), 1)
        self.assertEqual(domain.partner_id, customer)
        mailboxes = self.env["emboux.mail.mailbox"].search(
            [("domain_id", "=", domain.id)]
        )
        self.assertEqual(mailboxes.mapped("email"), ["first@tour-example.com"])
        self.assertEqual(domain.mailbox_count, 1)
        self.assertTrue(mailboxes._emboux_check_password("Tour-Initial-Secret-1"))
