from odoo import fields, models


class EmbouxMailWebhookTopic(models.Model):
    """A type of lifecycle event an endpoint may subscribe to, such as
    ``mailbox.created`` (the list is the module's data)."""

    _name = "emboux.mail.webhook.topic"
    _description = "Webhook Event Type"
    _order = "sequence, code"
    _rec_name = "code"

    code = fields.Char(required=True, readonly=True)
    name = fields.Char(required=True, translate=True)
    sequence = fields.Integer(default=10)

    _sql_constraints = [
        ("code_uniq", "unique(code)", "This event type already exists."),
    ]
