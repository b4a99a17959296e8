from odoo import api, fields, models

from ..exceptions import EmbouxValidationError


class EmbouxMailMailboxPassword(models.TransientModel):
    """Set a mailbox password, typed twice or generated.

    A typed password is never stored in the wizard's table: the two password
    fields are not stored, and their inverse hands the password to the
    mailbox when the dialog is saved. A generated one is shown once through
    ``emboux.mail.secret.show``.
    """

    _name = "emboux.mail.mailbox.password"
    _description = "Set Mailbox Password"

    mailbox_id = fields.Many2one(
        "emboux.mail.mailbox",
        required=True,
        ondelete="cascade",
        default=lambda self: self.env.context.get("active_id"),
    )
    mode = fields.Selection(
        [("generate", "Generate a password"), ("type", "Type a password")],
        required=True,
        default="generate",
    )
    new_password = fields.Char(
        compute="_compute_passwords", inverse="_inverse_passwords"
    )
    confirm_password = fields.Char(
        compute="_compute_passwords", inverse="_inverse_passwords"
    )

    def _compute_passwords(self):
        self.new_password = self.confirm_password = False

    def _inverse_passwords(self):
        for wizard in self.filtered(lambda w: w.mode == "type"):
            if wizard.new_password != wizard.confirm_password:
                raise EmbouxValidationError(
                    self.env._("Password: the two passwords differ.")
                )
            # through the field: the audit trail records the change
            wizard.mailbox_id.password = wizard.new_password

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("mode") == "type" and not vals.get("new_password"):
                raise EmbouxValidationError(self.env._("Password: type a password."))
        return super().create(vals_list)

    def action_apply(self):
        self.ensure_one()
        if self.mode == "type":
            return {"type": "ir.actions.act_window_close"}
        password = self.mailbox_id._emboux_generate_password()
        self.mailbox_id.password = password
        return self.env["emboux.mail.secret.show"]._emboux_action(
            self.env._("New password of %(email)s", email=self.mailbox_id.email),
            password,
            self.env._(
                "Copy it now: it is not stored in clear and will not be shown again."
            ),
        )
