from odoo import api, fields, models

from ..exceptions import EmbouxValidationError
from .emboux_mail_domain import MEBIBYTE


class ResPartner(models.Model):
    """A commercial partner is a mail-hosting tenant once it has a
    ``partner_ref``: the identifier the EmBoux API isolates and counts by."""

    _inherit = "res.partner"

    emboux_partner_ref = fields.Char(
        string="Tenant Reference",
        copy=False,
        index="btree_not_null",
        help="The tenant's identifier in the EmBoux API (partner_ref). "
        "Set to partner_<id> when the customer gets its first domain or key.",
    )
    emboux_plan_id = fields.Many2one(
        "emboux.mail.plan",
        string="Mail Hosting Plan",
        help="Default quotas for this customer's API keys and domains.",
    )
    emboux_domain_ids = fields.One2many(
        "emboux.mail.domain", "partner_id", string="Mail Domains"
    )
    emboux_domain_count = fields.Integer(
        string="Mail Domains Count",
        readonly=True,
        copy=False,
        help="Number of domains the tenant owns, kept by the domain rules.",
    )
    emboux_mailbox_count = fields.Integer(
        string="Mailboxes Count", compute="_compute_emboux_counts"
    )
    emboux_alias_count = fields.Integer(
        string="Aliases Count", compute="_compute_emboux_counts"
    )
    emboux_api_key_count = fields.Integer(
        string="API Keys Count", compute="_compute_emboux_counts"
    )
    emboux_domains_allowed = fields.Integer(
        string="Domains per Customer",
        compute="_compute_emboux_quotas",
        help="What the customer's keys, else its plan, else Settings allow; "
        "0 means unlimited.",
    )
    emboux_mailboxes_per_domain = fields.Integer(
        string="Mailboxes per Domain",
        compute="_compute_emboux_quotas",
        help="0 means unlimited.",
    )
    emboux_aliases_per_mailbox = fields.Integer(
        string="Aliases per Mailbox",
        compute="_compute_emboux_quotas",
        help="How many aliases may point at one address; 0 means unlimited.",
    )
    emboux_mailbox_capacity = fields.Integer(
        string="Mailbox Capacity",
        compute="_compute_emboux_quotas",
        help="Mailboxes per domain times the customer's domains; 0 means unlimited.",
    )
    emboux_quota_mb = fields.Integer(
        string="Mail Storage Allotted (MB)",
        compute="_compute_emboux_quota_mb",
        help="The sum of the storage quotas of the customer's mailboxes; 0 "
        "means unlimited (a mailbox without quota).",
    )
    emboux_used_mb = fields.Float(
        string="Mail Storage Used (MB)",
        compute="_compute_emboux_used_mb",
        search="_search_emboux_used_mb",
        digits=(16, 2),
        help="What the customer's mailboxes hold, as the mail server last reported it.",
    )
    emboux_api_key_ids = fields.One2many(
        "emboux.mail.api.key", "partner_id", string="Mail Hosting API Keys"
    )
    emboux_subscription_ids = fields.One2many(
        "emboux.mail.subscription", "partner_id", string="Mail Hosting Subscriptions"
    )
    emboux_subscription_id = fields.Many2one(
        "emboux.mail.subscription",
        string="Mail Hosting Subscription",
        compute="_compute_emboux_subscription_id",
    )
    emboux_grace_ids = fields.One2many(
        "emboux.mail.grace", "partner_id", string="Mail Hosting Grace Periods"
    )

    _sql_constraints = [
        (
            "emboux_partner_ref_uniq",
            "unique(emboux_partner_ref)",
            "Another customer already has this tenant reference.",
        )
    ]

    def _compute_emboux_used_mb(self):
        Mailbox = self.env["emboux.mail.mailbox"]
        used = Mailbox._emboux_used_bytes("partner_id", self.ids)
        for partner in self:
            partner.emboux_used_mb = used.get(partner.id, 0) / MEBIBYTE

    def _search_emboux_used_mb(self, operator, value):
        return self.env["emboux.mail.mailbox"]._emboux_search_sql(
            self, "emboux_used_mb", operator, value
        )

    def _field_to_sql(self, alias, fname, query=None, flush=True):
        if fname == "emboux_used_mb":
            return self.env["emboux.mail.mailbox"]._emboux_total_sql(
                alias, "partner_id"
            )
        return super()._field_to_sql(alias, fname, query, flush)

    def _compute_emboux_counts(self):
        """The smart buttons' counts: one grouped query per model."""
        for fname, model in (
            ("emboux_mailbox_count", "emboux.mail.mailbox"),
            ("emboux_alias_count", "emboux.mail.alias"),
            ("emboux_api_key_count", "emboux.mail.api.key"),
        ):
            groups = self.env[model]._read_group(
                [("partner_id", "in", self.ids)], ["partner_id"], ["__count"]
            )
            counts = {partner.id: count for partner, count in groups}
            for partner in self:
                partner[fname] = counts.get(partner.id, 0)

    @api.depends("emboux_plan_id", "emboux_domain_count")
    def _compute_emboux_quotas(self):
        for partner in self:
            limits = partner._emboux_limits()
            per_domain = limits["mailboxes_per_domain"]
            partner.emboux_domains_allowed = limits["domains_allowed"]
            partner.emboux_mailboxes_per_domain = per_domain
            partner.emboux_aliases_per_mailbox = limits["aliases_per_mailbox"]
            partner.emboux_mailbox_capacity = per_domain * partner.emboux_domain_count

    def _compute_emboux_quota_mb(self):
        groups = self.env["emboux.mail.mailbox"]._read_group(
            [("partner_id", "in", self.ids)],
            ["partner_id"],
            ["quota_mb:sum", "quota_mb:min"],
        )
        quotas = {
            partner.id: total if smallest else 0 for partner, total, smallest in groups
        }
        for partner in self:
            partner.emboux_quota_mb = quotas.get(partner.id, 0)

    @api.depends("emboux_subscription_ids")
    def _compute_emboux_subscription_id(self):
        for partner in self:
            partner.emboux_subscription_id = partner.emboux_subscription_ids[:1]

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._emboux_check_partner_ref_free(vals.get("emboux_partner_ref"))
        return super().create(vals_list)

    def write(self, vals):
        ref = vals.get("emboux_partner_ref")
        if ref and len(self) > 1:
            raise EmbouxValidationError(
                self.env._(
                    "Tenant Reference: %(value)r cannot be given to several customers.",
                    value=ref,
                )
            )
        self._emboux_check_partner_ref_free(ref, self)
        if "emboux_partner_ref" in vals:
            self._emboux_check_ref_not_upstream(vals["emboux_partner_ref"])
        hosting = {"emboux_plan_id", "emboux_partner_ref"} & set(vals)
        if hosting:
            self.env["emboux.mail.sync.undo"]._emboux_journal(
                "write", self, {name: vals[name] for name in hosting}
            )
        result = super().write(vals)
        if "emboux_plan_id" in vals:
            keys = (
                self.env["emboux.mail.api.key"]
                .sudo()
                .search(
                    [("partner_id", "in", self.ids), ("quota_override", "=", False)]
                )
            )
            keys._emboux_sync_quotas()
        return result

    def _emboux_check_ref_not_upstream(self, ref):
        """In connected mode the upstream knows a tenant by its reference
        once a domain or key of it was sent there, and offers no rename:
        the reference is then fixed, rather than silently diverging."""
        if not self.env["emboux.mail.sync.mixin"]._emboux_sync_configured():
            return
        for partner in self.filtered(
            lambda p: p.emboux_partner_ref and p.emboux_partner_ref != ref
        ):
            Domain = self.env["emboux.mail.domain"].sudo()
            Key = self.env["emboux.mail.api.key"].sudo().with_context(active_test=False)
            known = Domain.search_count(
                [("partner_id", "=", partner.id)], limit=1
            ) or Key.search_count(
                [
                    ("partner_id", "=", partner.id),
                    ("upstream_token_encrypted", "!=", False),
                ],
                limit=1,
            )
            if known:
                raise EmbouxValidationError(
                    self.env._(
                        "Tenant Reference: the upstream EmBoux API knows "
                        "%(customer)s as %(value)r: use Rename Tenant Reference, "
                        "which renames it there too.",
                        customer=partner.display_name,
                        value=partner.emboux_partner_ref,
                    )
                )

    def action_emboux_rename_ref(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "emboux_mail.emboux_mail_tenant_rename_action"
        )
        action["context"] = {"active_id": self.id}
        return action

    def _emboux_rename_ref(self, ref):
        """Rename this tenant here and upstream, where a reference cannot
        change: each of its keys is deleted and created again with the new
        reference (same token), then its domains are given to it. One save:
        a refusal takes all of it back."""
        self.ensure_one()
        self._emboux_check_partner_ref_free(ref, self)
        keys = (
            self.env["emboux.mail.api.key"]
            .sudo()
            .with_context(active_test=False)
            .search([("partner_id", "=", self.id)])
            .filtered("upstream_token_encrypted")
        )
        for key in keys:
            key._emboux_sync_key("key_delete", mark=False)
        old = self.emboux_partner_ref
        self.env["emboux.mail.sync.undo"]._emboux_journal(
            "write", self, {"emboux_partner_ref": ref}
        )
        self._emboux_write_ref(ref)
        for key in keys:
            key._emboux_sync_key("key_create")
        for domain in (
            self.env["emboux.mail.domain"].sudo().search([("partner_id", "=", self.id)])
        ):
            domain._emboux_sync_enqueue(
                "domain_owner",
                {"name": domain.name, "partner_ref": ref, "previous_ref": old},
            )

    def _emboux_write_ref(self, ref):
        """Past the rule of ``write`` that keeps a reference the upstream
        knows: only ``_emboux_rename_ref`` renames it there too."""
        return super().write({"emboux_partner_ref": ref})

    @api.model
    def _emboux_check_partner_ref_free(self, ref, partners=None):
        """Refuse a tenant reference another customer holds, with a message
        naming it (the unique index stays the guard against races)."""
        if not ref:
            return
        domain = [("emboux_partner_ref", "=", ref)]
        if partners:
            domain.append(("id", "not in", partners.ids))
        if self.sudo().with_context(active_test=False).search_count(domain, limit=1):
            raise EmbouxValidationError(
                self.env._(
                    "Tenant Reference: %(value)r is already used by another customer.",
                    value=ref,
                )
            )

    def _emboux_tenant(self):
        """The commercial partner that owns hosting, with its reference set."""
        tenant = self.commercial_partner_id
        if tenant and not tenant.emboux_partner_ref:
            tenant.sudo().emboux_partner_ref = f"partner_{tenant.id}"
        return tenant

    def _emboux_active_keys(self):
        now = fields.Datetime.now()
        return (
            self.env["emboux.mail.api.key"]
            .sudo()
            .search(
                [
                    # a form's unsaved record stands for the stored one
                    ("partner_id", "=", self._origin.id),
                    ("active", "=", True),
                    "|",
                    ("expires_at", "=", False),
                    ("expires_at", ">", now),
                ]
            )
        )

    def _emboux_limits(self):
        """The tenant's quotas: those of its active keys (all keys of a tenant
        share one pool, so the most generous applies), else its plan, else
        the defaults in Settings. 0 means unlimited. A domain without owner
        (an empty recordset) gets the defaults."""
        quota_fields = (
            "domains_allowed",
            "mailboxes_per_domain",
            "aliases_per_mailbox",
        )
        if not self:  # a domain without owner
            return self.env["emboux.mail.plan"]._default_quotas()
        self.ensure_one()
        keys = self._emboux_active_keys()
        keys.fetch(quota_fields)  # checked at every creation: not the whole rows
        if keys:
            return {
                name: 0 if 0 in keys.mapped(name) else max(keys.mapped(name))
                for name in quota_fields
            }
        source = self.emboux_plan_id or self.env["emboux.mail.plan"]._default_quotas()
        return {name: source[name] for name in quota_fields}

    def _emboux_domain_surplus(self):
        """How many domains the customer holds beyond its plan's quota."""
        self.ensure_one()
        allowed = self._emboux_limits()["domains_allowed"]
        return self.emboux_domain_count - allowed if allowed else 0

    def _emboux_plan_value(self, name):
        """A setting of the customer's plan (``name``: a field of
        emboux.mail.plan), else its default in Settings; an empty recordset
        (a domain without owner) gets the default."""
        plan = self.emboux_plan_id if len(self) == 1 else self.browse()
        if plan:
            return plan[name]
        return self.env["emboux.mail.plan"]._default_quotas()[name]

    def _emboux_max_quota_mb(self):
        """The largest mailbox a customer may set itself."""
        return self._emboux_plan_value("max_quota_mb")

    def action_view_emboux_domains(self):
        return self._emboux_action("emboux_mail.emboux_mail_domain_action")

    def action_view_emboux_mailboxes(self):
        return self._emboux_action("emboux_mail.emboux_mail_mailbox_action")

    def action_view_emboux_aliases(self):
        return self._emboux_action("emboux_mail.emboux_mail_alias_action")

    def action_view_emboux_api_keys(self):
        return self._emboux_action("emboux_mail.emboux_mail_api_key_action")

    def _emboux_action(self, xmlid):
        action = self.env["ir.actions.act_window"]._for_xml_id(xmlid)
        action["domain"] = [("partner_id", "child_of", self.commercial_partner_id.ids)]
        action["context"] = {"default_partner_id": self.commercial_partner_id.id}
        return action
