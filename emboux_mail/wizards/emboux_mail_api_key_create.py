from odoo import fields, models


class EmbouxMailApiKeyCreate(models.TransientModel):
    """Create an API key with a random token, shown once."""

    _name = "emboux.mail.api.key.create"
    _description = "Create Mail Hosting API Key"

    partner_id = fields.Many2one(
        "res.partner",
        string="Customer",
        required=True,
        domain=[("is_company", "=", True)],
        default=lambda self: self.env.context.get("default_partner_id"),
    )
    name = fields.Char(required=True, default=lambda self: self.env._("API key"))
    expires_at = fields.Datetime(string="Expires On")

    def action_create(self):
        self.ensure_one()
        key, token = self.env["emboux.mail.api.key"]._emboux_generate(
            {
                "partner_id": self.partner_id.id,
                "name": self.name,
                "expires_at": self.expires_at,
            }
        )
        return self.env["emboux.mail.secret.show"]._emboux_action(
            self.env._("API key %(name)s", name=key.name),
            token,
            self.env._(
                "Copy the token now: only its hash is kept, it will not be shown again."
            ),
        )
