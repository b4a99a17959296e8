from odoo import fields, models


class EmbouxMailGraceStep(models.Model):
    """One step a grace period took, at most once: a reminder, the
    suspension of the surplus domains, their re-activation."""

    _name = "emboux.mail.grace.step"
    _description = "Mail Hosting Grace Step"
    _order = "id"

    grace_id = fields.Many2one(
        "emboux.mail.grace", required=True, ondelete="cascade", index=True
    )
    step = fields.Selection(
        [
            ("reminder_7", "Reminder, Day 7"),
            ("reminder_15", "Reminder, Day 15"),
            ("reminder_22", "Reminder, Day 22"),
            ("suspension", "Surplus Domains Suspended"),
            ("reactivation", "Domains Re-activated"),
        ],
        required=True,
    )
    date = fields.Datetime(required=True, default=fields.Datetime.now)
    domain_ids = fields.Many2many(
        "emboux.mail.domain",
        "emboux_mail_grace_step_domain_rel",
        "step_id",
        "domain_id",
        string="Domains",
    )

    _sql_constraints = [
        ("step_uniq", "unique(grace_id, step)", "A grace period takes each step once.")
    ]
