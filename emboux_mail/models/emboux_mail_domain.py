from odoo import api, fields, models

from ..exceptions import EmbouxQuotaError, EmbouxUserError, EmbouxValidationError
from ..services import names

DNS_STATES = [
    ("unchecked", "Not checked"),
    ("ok", "Healthy"),
    ("warning", "Incomplete"),
    ("error", "Failing"),
    ("unknown", "Unknown"),
]


class EmbouxMailDomain(models.Model):
    """A customer's mail domain: the unit of quotas, suspension and DNS."""

    _name = "emboux.mail.domain"
    _description = "Mail Domain"
    _inherit = ["mail.thread", "mail.activity.mixin", "emboux.mail.mixin"]
    _order = "create_date desc, id desc"

    name = fields.Char(
        string="Domain", required=True, tracking=True, help="Stored lower-case, IDNA."
    )
    partner_id = fields.Many2one(
        "res.partner",
        string="Customer",
        index=True,
        tracking=True,
        ondelete="restrict",
        domain=[("is_company", "=", True)],
        help="The tenant owning the domain; empty for an orphaned domain.",
    )
    partner_ref = fields.Char(related="partner_id.emboux_partner_ref")
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    suspended = fields.Boolean(tracking=True, readonly=True, copy=False)
    is_wildcard = fields.Boolean(
        string="Wildcard Parent",
        tracking=True,
        help="New domains under this one are linked to it automatically.",
    )
    parent_id = fields.Many2one(
        "emboux.mail.domain",
        string="Parent Domain",
        index="btree_not_null",
        ondelete="set null",
        tracking=True,
    )
    child_ids = fields.One2many("emboux.mail.domain", "parent_id", string="Subdomains")
    verified = fields.Boolean(
        readonly=True, copy=False, help="Verified with the outbound provider."
    )
    provider = fields.Char(readonly=True, copy=False)
    verification_token = fields.Char(readonly=True, copy=False)
    dkim_tokens = fields.Json(readonly=True, copy=False)
    dns_records = fields.Json(string="Records to Publish", readonly=True, copy=False)
    dns_state = fields.Selection(
        DNS_STATES,
        string="DNS Health",
        default="unchecked",
        required=True,
        readonly=True,
        copy=False,
        tracking=True,
    )
    dns_checked_at = fields.Datetime(string="DNS Checked On", readonly=True, copy=False)
    mailbox_ids = fields.One2many(
        "emboux.mail.mailbox", "domain_id", string="Mailboxes"
    )
    alias_ids = fields.One2many("emboux.mail.alias", "domain_id", string="Aliases")
    mailbox_count = fields.Integer(
        readonly=True, copy=False, help="Kept by the mailbox rules."
    )
    mailbox_limit = fields.Integer(compute="_compute_limits", help="0 means unlimited.")
    alias_count = fields.Integer(compute="_compute_alias_count")

    _sql_constraints = [
        ("name_uniq", "unique(name)", "This domain already exists."),
    ]

    @api.depends("partner_id")
    def _compute_limits(self):
        for domain in self:
            limits = domain.partner_id._emboux_limits()
            domain.mailbox_limit = limits["mailboxes_per_domain"]

    def _compute_alias_count(self):
        groups = self.env["emboux.mail.alias"]._read_group(
            [("domain_id", "in", self.ids)], ["domain_id"], ["__count"]
        )
        counts = {domain.id: count for domain, count in groups}
        for domain in self:
            domain.alias_count = counts.get(domain.id, 0)

    @api.constrains("parent_id")
    def _check_parent(self):
        for domain in self.filtered("parent_id"):
            if not domain.name.endswith("." + domain.parent_id.name):
                raise EmbouxValidationError(
                    self.env._(
                        "Parent Domain: %(parent)s is not a parent of %(name)s.",
                        parent=domain.parent_id.name,
                        name=domain.name,
                    )
                )

    # -- CRUD ------------------------------------------------------------------
    @api.model_create_multi
    def create(self, vals_list):
        Partner = self.env["res.partner"]
        for vals in vals_list:
            name = vals.get("name")
            vals["name"] = self._emboux_normalize("domain", name, self.env._("Domain"))
            if vals.get("partner_id"):
                vals["partner_id"] = (
                    Partner.browse(vals["partner_id"])._emboux_tenant().id
                )
            if "parent_id" not in vals:
                vals["parent_id"] = self._emboux_wildcard_parent(vals["name"]).id
        self._emboux_check_unique("name", [vals["name"] for vals in vals_list])
        tenants = Partner.browse(
            [v["partner_id"] for v in vals_list if v.get("partner_id")]
        )
        counts = self._emboux_lock_tenants(tenants)
        for tenant in tenants:
            self._emboux_check_domain_quota(
                tenant, counts[tenant.id], tenants.ids.count(tenant.id)
            )
        duplicate = self._emboux_duplicate_error(vals_list[0]["name"])
        domains = self._emboux_insert(super().create, vals_list, duplicate)
        self._emboux_lock_tenants(tenants)
        return domains

    def write(self, vals):
        if "name" in vals and any(domain.name != vals["name"] for domain in self):
            raise EmbouxUserError(
                self.env._("Domain: a domain cannot be renamed; create a new one.")
            )
        if "partner_id" in vals and not self.env.context.get("emboux_transfer"):
            new_owner = self.env["res.partner"].browse(vals.pop("partner_id"))
            for domain in self.filtered(lambda d: d.partner_id != new_owner):
                domain._emboux_transfer_owner(new_owner)
        return super().write(vals) if vals else True

    def unlink(self):
        """Delete the domains with their mailboxes and aliases (a cascade the
        ORM runs, so that chatter and later hooks see every record go)."""
        tenants = self.partner_id
        self.with_context(emboux_cascade=True).mailbox_ids.unlink()
        self.with_context(emboux_cascade=True).alias_ids.unlink()
        result = super().unlink()
        self._emboux_lock_tenants(tenants)
        return result

    # -- rules -----------------------------------------------------------------
    def _emboux_duplicate_error(self, name):
        return EmbouxValidationError(
            self.env._("Domain: %(value)r already exists.", value=name),
            detail="Domain already exists",
        )

    @api.model
    def _emboux_check_domain_quota(self, tenant, owned, adding=1):
        allowed = tenant._emboux_limits()["domains_allowed"]
        if allowed and owned + adding > allowed:
            raise EmbouxQuotaError(
                self.env._(
                    "Customer %(customer)s: domain quota exceeded "
                    "(%(used)s of %(allowed)s domains used).",
                    customer=tenant.display_name,
                    used=owned,
                    allowed=allowed,
                ),
                detail=f"Domain quota exceeded: {owned}/{allowed}",
            )

    @api.model
    def _emboux_wildcard_parent(self, name):
        """The closest wildcard domain that ``name`` is a subdomain of."""
        candidates = names.parent_candidates(name)
        if not candidates:
            return self.browse()
        parents = self.sudo().search(
            [("name", "in", candidates), ("is_wildcard", "=", True)]
        )
        by_name = {parent.name: parent for parent in parents}
        for candidate in candidates:
            if candidate in by_name:
                return by_name[candidate].sudo(False)
        return self.browse()

    def _emboux_transfer_owner(self, new_owner):
        """Move the domain to ``new_owner`` (a tenant with an active key), or
        orphan it when ``new_owner`` is empty; both tenants' domain counters
        move in this transaction. Quotas are not checked: this is the
        operator's (master's) decision, as in the EmBoux API."""
        self.ensure_one()
        new_owner = new_owner._emboux_tenant() if new_owner else new_owner
        if new_owner and not new_owner._emboux_active_keys():
            raise EmbouxUserError(
                self.env._(
                    "Customer %(customer)s has no active API key: a domain can "
                    "only be moved to a customer with one.",
                    customer=new_owner.display_name,
                ),
                detail="No active api_key for partner_ref="
                + str(new_owner.emboux_partner_ref),
            )
        old_owner = self.partner_id
        self._emboux_lock_tenants(old_owner | new_owner)
        self.with_context(emboux_transfer=True).write({"partner_id": new_owner.id})
        self._emboux_lock_tenants(old_owner | new_owner)
        return old_owner

    def _emboux_expected_dns(self):
        """The records a customer must publish for this domain, from the
        expectations set in Settings: ``[{record_type, name, expected}]``."""
        self.ensure_one()
        params = self.env["ir.config_parameter"].sudo()
        mx_hosts = params.get_param("emboux_mail.dns_mx_hosts", "mx1.emboux.com")
        spf = params.get_param("emboux_mail.dns_spf_include", "include:emboux.com")
        selector = params.get_param("emboux_mail.dns_dkim_selector", "emboux")
        records = [
            {"record_type": "MX", "name": self.name, "expected": host.strip()}
            for host in mx_hosts.split(",")
            if host.strip()
        ]
        records += [
            {"record_type": "TXT", "name": self.name, "expected": spf},
            {
                "record_type": "TXT",
                "name": f"{selector}._domainkey.{self.name}",
                "expected": "v=DKIM1",
            },
            {
                "record_type": "TXT",
                "name": f"_dmarc.{self.name}",
                "expected": "v=DMARC1",
            },
        ]
        return records

    def action_suspend(self):
        self.filtered(lambda d: not d.suspended).write({"suspended": True})

    def action_activate(self):
        self.filtered("suspended").write({"suspended": False})

    def action_view_mailboxes(self):
        return self._emboux_child_action("emboux_mail.emboux_mail_mailbox_action")

    def action_view_aliases(self):
        return self._emboux_child_action("emboux_mail.emboux_mail_alias_action")

    def _emboux_child_action(self, xmlid):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(xmlid)
        action["domain"] = [("domain_id", "=", self.id)]
        action["context"] = {"default_domain_id": self.id}
        return action
