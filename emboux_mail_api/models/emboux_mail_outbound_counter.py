from odoo import api, models


class EmbouxMailOutboundCounter(models.Model):
    _inherit = "emboux.mail.outbound.counter"

    @api.model
    def _cron_reset_daily(self):
        """Also drop the policy service's week-old records."""
        result = super()._cron_reset_daily()
        self.env["emboux.mail.server"]._emboux_purge()
        return result
