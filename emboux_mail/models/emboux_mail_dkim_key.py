from odoo import api, fields, models
from odoo.tools import SQL

from ..services import dkim


class EmbouxMailDkimKey(models.Model):
    """A domain's DKIM key. The mail server signs with the newest one; the
    private part is readable by the mail server's role and by system
    administrators, and shown nowhere."""

    _name = "emboux.mail.dkim.key"
    _description = "DKIM Key"
    _order = "id desc"
    _rec_name = "selector"

    domain_id = fields.Many2one(
        "emboux.mail.domain", required=True, ondelete="cascade", index=True
    )
    selector = fields.Char(required=True, readonly=True)
    private_key = fields.Text(
        readonly=True, groups="base.group_system", prefetch=False, copy=False
    )
    public_key = fields.Text(readonly=True, required=True)
    record_name = fields.Char(compute="_compute_record", help="Where to publish it.")
    record_value = fields.Char(string="TXT Value", compute="_compute_record")
    active = fields.Boolean(default=True)

    _sql_constraints = [
        (
            "selector_uniq",
            "unique(domain_id, selector)",
            "A domain uses each DKIM selector once.",
        ),
    ]

    @api.depends("selector", "public_key", "domain_id.name")
    def _compute_record(self):
        for key in self:
            key.record_name = f"{key.selector}._domainkey.{key.domain_id.name}"
            key.record_value = dkim.record_value(key.public_key)

    @api.model
    def _emboux_generate(self, domain, selector):
        """A new key of ``domain``, the one its mail is signed with from now
        on; older keys are archived (their records may then be removed).
        Made by the system: whoever first looks at the domain's DNS (an API
        key, a portal user) may not read keys."""
        # two transactions may make a domain's first key at once (the
        # scheduled preparation and a first look at its DNS): the second to
        # update the domain's row fails to serialize and Odoo replays it,
        # which then finds the key, instead of answering the unique index
        self.env.cr.execute(
            SQL(
                "UPDATE %s SET write_date = write_date WHERE id = %s",
                SQL.identifier(domain._table),
                domain.id,
            )
        )
        private_pem, public_key = dkim.generate()
        old = self.sudo().search([("domain_id", "=", domain.id)])
        key = self.sudo().create(
            {
                "domain_id": domain.id,
                "selector": selector,
                "private_key": private_pem,
                "public_key": public_key,
            }
        )
        old.action_archive()
        return key.with_env(self.env)
