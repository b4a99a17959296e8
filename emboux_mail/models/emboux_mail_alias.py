from odoo import api, fields, models

from ..exceptions import EmbouxQuotaError, EmbouxValidationError
from ..services.stamps import stamp


class EmbouxMailAlias(models.Model):
    """An alias: an address, or ``@domain`` for a catch-all, forwarded to a
    destination address (inside or outside the hosted domains)."""

    _name = "emboux.mail.alias"
    _description = "Mail Alias"
    _inherit = [
        "mail.thread",
        "emboux.mail.mixin",
        "emboux.mail.sync.mixin",
        "emboux.mail.audit.mixin",
    ]
    _order = "create_date desc, id desc"
    _rec_name = "source"

    source = fields.Char(
        required=True,
        tracking=True,
        help="An address, or @domain.tld to catch every address.",
    )
    destination = fields.Char(required=True, tracking=True)
    domain_id = fields.Many2one(
        "emboux.mail.domain",
        string="Domain",
        required=True,
        index=True,
        ondelete="cascade",
    )
    partner_id = fields.Many2one(
        related="domain_id.partner_id",
        store=True,
        index=True,
        precompute=True,
        string="Customer",
    )
    company_id = fields.Many2one(
        related="domain_id.company_id", store=True, precompute=True
    )
    is_catch_all = fields.Boolean(
        string="Catch-all", compute="_compute_is_catch_all", store=True
    )

    _sql_constraints = [
        ("source_uniq", "unique(source)", "An alias with this source already exists."),
    ]

    @api.depends("source")
    def _compute_is_catch_all(self):
        for alias in self:
            alias.is_catch_all = bool(alias.source) and alias.source.startswith("@")

    @api.model_create_multi
    def create(self, vals_list):
        Mailbox = self.env["emboux.mail.mailbox"]
        for vals in vals_list:
            source = vals.get("source")
            vals["source"] = self._emboux_normalize(
                "alias_source", source, self.env._("Source")
            )
            vals["destination"] = self._emboux_normalize(
                "email", vals.get("destination"), self.env._("Destination")
            )
            # an alias lives in the domain its source names, like a mailbox
            domain = Mailbox._emboux_domain_for(vals["source"], vals.get("domain_id"))
            vals["domain_id"] = domain.id
        self._emboux_check_unique("source", [vals["source"] for vals in vals_list])
        domains = self.env["emboux.mail.domain"].browse(
            [vals["domain_id"] for vals in vals_list]
        )
        domains._emboux_check_active()
        self._emboux_lock_tenants(domains.partner_id)
        self._emboux_lock_domains(domains.filtered(lambda d: not d.partner_id))
        for vals in vals_list:
            self._emboux_check_alias_quota(
                self.env["emboux.mail.domain"].browse(vals["domain_id"]),
                vals["destination"],
                [v["destination"] for v in vals_list].count(vals["destination"]),
            )
        duplicate = self._emboux_duplicate_error(vals_list[0]["source"])
        aliases = self._emboux_insert(super().create, vals_list, duplicate)
        aliases._emboux_sync_send_create()
        self.env["emboux.mail.webhook.event"]._emboux_emit("alias.created", aliases)
        return aliases

    def write(self, vals):
        if "source" in vals:
            vals["source"] = self._emboux_normalize(
                "alias_source", vals["source"], self.env._("Source")
            )
        if "destination" in vals:
            vals["destination"] = self._emboux_normalize(
                "email", vals["destination"], self.env._("Destination")
            )
        if any(alias.source != vals.get("source", alias.source) for alias in self):
            raise EmbouxValidationError(
                self.env._(
                    "Source: the source of an alias cannot change; delete the alias "
                    "and create a new one."
                )
            )
        moved = self.filtered(
            lambda a: a.destination != vals.get("destination", a.destination)
        )
        moved.domain_id._emboux_check_active()
        before = {alias.id: alias.destination for alias in moved}
        result = super().write(vals)
        # the upstream has no update of an alias: delete and create again
        for alias in moved:
            alias._emboux_sync_enqueue(
                "alias_delete", alias._emboux_sync_payload(before[alias.id]), mark=False
            )
        moved._emboux_sync_send_create()
        return result

    def unlink(self):
        self.env["emboux.mail.webhook.event"]._emboux_emit("alias.deleted", self)
        if not self.env.context.get("emboux_cascade"):
            for alias in self:
                alias._emboux_sync_enqueue(
                    "alias_delete", alias._emboux_sync_payload(), mark=False
                )
        return super().unlink()

    # -- connected mode (see emboux_mail_sync_mixin) ----------------------------
    def _emboux_api_dict(self):
        """The alias as the EmBoux API and the webhooks show it."""
        self.ensure_one()
        return {
            "id": self.id,
            "domain_id": self.domain_id.id,
            "source": self.source,
            "destination": self.destination,
            "created_at": stamp(self.create_date),
        }

    def _emboux_sync_send_create(self):
        for alias in self:
            alias._emboux_sync_enqueue("alias_create", alias._emboux_sync_payload())

    def _emboux_sync_payload(self, destination=None):
        """The alias as the upstream holds it (creates, and deletes, which
        a refusal later in the same save undoes by creating it again)."""
        return {
            "domain_name": self.domain_id.name,
            "source": self.source,
            "destination": destination or self.destination,
            "partner_ref": self.domain_id.partner_ref or None,
        }

    def _emboux_sync_lanes(self):
        return self.domain_id._emboux_sync_lanes()

    def _emboux_duplicate_error(self, source):
        return EmbouxValidationError(
            self.env._("Source: an alias %(value)r already exists.", value=source),
            detail="Alias source already exists",
        )

    @api.model
    def _emboux_check_alias_quota(self, domain, destination, adding=1):
        """At most ``aliases_per_mailbox`` aliases of one tenant (or of one
        orphaned domain) may point at the same destination; catch-alls count
        like any alias."""
        allowed = domain.partner_id._emboux_limits()["aliases_per_mailbox"]
        if not allowed:
            return
        scope = (
            [("partner_id", "=", domain.partner_id.id)]
            if domain.partner_id
            else [("domain_id", "=", domain.id)]
        )
        used = self.sudo().search_count([*scope, ("destination", "=", destination)])
        if used + adding > allowed:
            raise EmbouxQuotaError(
                self.env._(
                    "Destination %(value)s: alias quota exceeded (%(used)s of "
                    "%(allowed)s aliases already point at it).",
                    value=destination,
                    used=used,
                    allowed=allowed,
                ),
                detail=f"Alias quota exceeded: {used}/{allowed}",
            )
