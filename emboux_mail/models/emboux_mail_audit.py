from odoo import fields, models


class EmbouxMailAudit(models.Model):
    """One change of a hosting record: who, when, from where, what."""

    _name = "emboux.mail.audit"
    _description = "Mail Hosting Audit Entry"
    _order = "id desc"

    res_model = fields.Char(string="Object Type", readonly=True, index=True)
    res_id = fields.Many2oneReference(model_field="res_model", readonly=True)
    partner_id = fields.Many2one(
        "res.partner", string="Customer", readonly=True, index=True
    )
    company_id = fields.Many2one(
        "res.company", readonly=True, default=lambda self: self.env.company
    )
