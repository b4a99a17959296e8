from odoo import fields, models


class EmbouxMailSecretShow(models.AbstractModel):
    """Shows a new token or password once, in a dialog opened on an unsaved
    record: the clear value travels only in the action's context, so it is
    never written to the database (as Odoo core's ``res.users.apikeys.show``).
    """

    _name = "emboux.mail.secret.show"
    _description = "Show a secret once"

    id = fields.Id()
    secret = fields.Char(readonly=True)
    note = fields.Char(readonly=True)

    def _emboux_action(self, title, secret, note):
        return {
            "type": "ir.actions.act_window",
            "name": title,
            "res_model": self._name,
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "new",
            "context": {"default_secret": secret, "default_note": note},
        }
