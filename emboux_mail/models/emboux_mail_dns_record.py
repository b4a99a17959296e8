from odoo import fields, models

STATUSES = [
    ("ok", "OK"),
    ("missing", "Missing"),
    ("incorrect", "Incorrect"),
    ("unknown", "Unknown"),
]


class EmbouxMailDnsRecord(models.Model):
    """One record a domain must publish, with what the last check found."""

    _name = "emboux.mail.dns.record"
    _description = "Mail Domain DNS Record"
    _order = "domain_id, sequence, id"

    domain_id = fields.Many2one(
        "emboux.mail.domain", required=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one(related="domain_id.company_id", store=True)
    partner_id = fields.Many2one(related="domain_id.partner_id", store=True)
    sequence = fields.Integer()
    record_type = fields.Char(string="Type", required=True)
    kind = fields.Selection(
        [("MX", "MX"), ("SPF", "SPF"), ("DKIM", "DKIM"), ("DMARC", "DMARC")],
        string="Purpose",
        required=True,
    )
    name = fields.Char(required=True)
    expected = fields.Char()
    found = fields.Char()
    status = fields.Selection(STATUSES, required=True, default="unknown")
    checked_at = fields.Datetime(string="Checked On")
