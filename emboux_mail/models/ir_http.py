from odoo import models


class IrHttp(models.AbstractModel):
    _inherit = "ir.http"

    @classmethod
    def _get_translation_frontend_modules_name(cls):
        """The portal script's texts are translated too: the frontend loads
        the translations of these modules only."""
        return [*super()._get_translation_frontend_modules_name(), "emboux_mail"]
