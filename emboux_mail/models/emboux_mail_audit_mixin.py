from odoo import models


class EmbouxMailAuditMixin(models.AbstractModel):
    """Records every change of the hosting records in the audit trail."""

    _name = "emboux.mail.audit.mixin"
    _description = "Audited hosting record"
