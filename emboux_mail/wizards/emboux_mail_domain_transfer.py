from odoo import fields, models

from ..exceptions import EmbouxUserError


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
    )
    orphan = fields.Boolean(
        string="Leave to Nobody",
        help="Orphan the domains: they then belong to no customer, and no "
        "customer's key or portal reaches them.",
    )

    def action_transfer(self):
        if not self.new_partner_id and not self.orphan:
            # an empty customer must be a decision, not a slip
            raise EmbouxUserError(
                self.env._(
                    "Choose the new customer, or tick Leave to Nobody to orphan "
                    "the domains."
                )
            )
        for domain in self.domain_ids:
            domain._emboux_transfer_owner(self.new_partner_id)
        return {"type": "ir.actions.act_window_close"}
