from odoo import fields, models


class EmbouxMailWebhookAttempt(models.Model):
    """One POST to an endpoint: the delivery log an operator or a customer
    reads to see why a receiver missed an event."""

    _name = "emboux.mail.webhook.attempt"
    _description = "Webhook Delivery Attempt"
    _order = "id desc"

    delivery_id = fields.Many2one(
        "emboux.mail.webhook.delivery",
        required=True,
        readonly=True,
        index=True,
        ondelete="cascade",
    )
    webhook_id = fields.Many2one(
        related="delivery_id.webhook_id", store=True, index=True, string="Endpoint"
    )
    message_id = fields.Char(related="delivery_id.event_id.message_id")
    topic = fields.Char(related="delivery_id.event_id.topic")
    status = fields.Integer(
        string="HTTP Status", readonly=True, help="0: no answer (timeout, refused)."
    )
    succeeded = fields.Boolean(readonly=True)
    latency_ms = fields.Integer(string="Latency (ms)", readonly=True)
    answer = fields.Char(readonly=True, help="The start of the answer, or the error.")
