from odoo import fields, models


class EmbouxMailDomainTransfer(models.TransientModel):
    """Move domains to another customer, or orphan them."""

    _name = "emboux.mail.domain.transfer"
    _description = "Transfer Mail Domains"

    domain_ids = fields.Many2many(
        "emboux.mail.domain",
        string="Domains",
        required=True,
        default=lambda self: self.env.context.get("active_ids"),
    )
    new_partner_id = fields.Many2one(
        "res.partner",
        string="New Customer",
        domain=[("is_company", "=", True)],
        help="Leave empty to orphan the domains (they then belong to nobody).",
    )

    def action_transfer(self):
        for domain in self.domain_ids:
            domain._emboux_transfer_owner(self.new_partner_id)
        return {"type": "ir.actions.act_window_close"}
