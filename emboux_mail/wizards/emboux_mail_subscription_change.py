from odoo import fields, models


class EmbouxMailSubscriptionChange(models.TransientModel):
    _name = "emboux.mail.subscription.change"
    _description = "Change a Customer's Mail Hosting Plan"

    subscription_id = fields.Many2one(
        "emboux.mail.subscription",
        required=True,
        default=lambda self: self.env.context.get("active_id"),
    )
    plan_id = fields.Many2one(
        "emboux.mail.plan",
        string="New Plan",
        required=True,
        domain=[("product_id", "!=", False)],
    )

    def action_change(self):
        invoice = self.subscription_id._emboux_choose_plan(self.plan_id)
        if not invoice:
            return {"type": "ir.actions.act_window_close"}
        return {
            "type": "ir.actions.act_window",
            "res_model": "account.move",
            "res_id": invoice.id,
            "view_mode": "form",
        }
