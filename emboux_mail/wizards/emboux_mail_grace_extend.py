from odoo import fields, models


class EmbouxMailGraceExtend(models.TransientModel):
    _name = "emboux.mail.grace.extend"
    _description = "Extend a Mail Hosting Grace Period"

    grace_id = fields.Many2one(
        "emboux.mail.grace",
        required=True,
        default=lambda self: self.env.context.get("active_id"),
    )
    days = fields.Integer(string="Extra Days", required=True, default=7)

    def action_extend(self):
        self.grace_id._emboux_extend(self.days)
