from odoo import fields, models


class EmbouxMailTenantRename(models.TransientModel):
    """Rename a customer's tenant reference, here and upstream."""

    _name = "emboux.mail.tenant.rename"
    _description = "Rename Tenant Reference"

    partner_id = fields.Many2one(
        "res.partner",
        string="Customer",
        required=True,
        default=lambda self: self.env.context.get("active_id"),
    )
    current_ref = fields.Char(related="partner_id.emboux_partner_ref")
    new_ref = fields.Char(string="New Tenant Reference", required=True)

    def action_rename(self):
        self.partner_id.check_access("write")
        self.partner_id.sudo()._emboux_rename_ref(self.new_ref.strip())
        return {"type": "ir.actions.act_window_close"}
