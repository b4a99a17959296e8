from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    emboux_upstream_url = fields.Char(
        string="Upstream EmBoux API",
        config_parameter="emboux_mail.upstream_url",
        help="Base URL of the EmBoux API to provision (connected mode), e.g. "
        "https://api.emboux.com. Leave empty when this database is the backend.",
    )
    emboux_upstream_token = fields.Char(
        string="Upstream Master Token",
        config_parameter="emboux_mail.upstream_token",
        help="The master token Odoo uses on the upstream API.",
    )
    emboux_default_domains_allowed = fields.Integer(
        string="Domains per Customer",
        config_parameter="emboux_mail.default_domains_allowed",
        default=0,
        help="For customers without plan or key; 0 means unlimited.",
    )
    emboux_default_mailboxes_per_domain = fields.Integer(
        string="Mailboxes per Domain",
        config_parameter="emboux_mail.default_mailboxes_per_domain",
        default=1,
    )
    emboux_default_aliases_per_mailbox = fields.Integer(
        string="Aliases per Address",
        config_parameter="emboux_mail.default_aliases_per_mailbox",
        default=5,
    )
    emboux_default_quota_mb = fields.Integer(
        string="Mailbox Storage (MB)",
        config_parameter="emboux_mail.default_quota_mb",
        default=1024,
    )
