from odoo import fields, models


class EmbouxMailOutboundMonth(models.Model):
    """A domain's closed month of outbound mail, kept for billing (the
    overage of soft limits) after the monthly counters start over."""

    _name = "emboux.mail.outbound.month"
    _description = "Outbound Mail Month"
    _order = "month desc, domain_name"
    _rec_name = "domain_name"

    domain_id = fields.Many2one(
        "emboux.mail.domain", ondelete="set null", index="btree_not_null"
    )
    domain_name = fields.Char(
        required=True, help="The domain, kept when it is deleted."
    )
    partner_id = fields.Many2one(
        "res.partner", string="Customer", ondelete="set null", index=True
    )
    month = fields.Date(required=True, help="The first day of the month.")
    sent = fields.Integer()
    over_limit = fields.Integer(help="Messages sent beyond a soft limit.")
    recipients = fields.Integer()
    transfer_mb = fields.Float(string="Transfer (MB)", digits=(16, 2))
    delivered_count = fields.Integer(string="Delivered")
    bounce_count = fields.Integer(string="Bounces")
    complaint_count = fields.Integer(string="Complaints")
