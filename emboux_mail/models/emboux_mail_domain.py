import logging
from datetime import timedelta

from odoo import api, fields, models

from ..exceptions import EmbouxQuotaError, EmbouxUserError, EmbouxValidationError
from ..services import dns_checker, names

_logger = logging.getLogger(__name__)

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
    _inherit = [
        "mail.thread",
        "mail.activity.mixin",
        "emboux.mail.mixin",
        "emboux.mail.sync.mixin",
    ]
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
        index=True,
        help="Changes are posted in the chatter by the DNS check itself.",
    )
    dns_record_ids = fields.One2many(
        "emboux.mail.dns.record", "domain_id", string="DNS Records", readonly=True
    )
    user_id = fields.Many2one(
        "res.users",
        string="Responsible",
        default=lambda self: self.env.user,
        tracking=True,
        help="Gets an activity when the domain's DNS health degrades.",
    )
    dns_checked_at = fields.Datetime(
        string="DNS Checked On", readonly=True, copy=False, index=True
    )
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
        domains._emboux_sync_created()
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
        before = self._emboux_sync_snapshot(vals)
        result = super().write(vals) if vals else True
        self._emboux_sync_written(before)
        return result

    def unlink(self):
        """Delete the domains with their mailboxes and aliases (a cascade the
        ORM runs, so that chatter and later hooks see every record go)."""
        tenants = self.partner_id
        for domain in self:
            domain._emboux_sync_enqueue(
                "domain_delete", {"name": domain.name}, mark=False
            )
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
        self._emboux_sync_enqueue(
            "domain_owner",
            {"name": self.name, "partner_ref": new_owner.emboux_partner_ref or None},
        )
        return old_owner

    # -- DNS health --------------------------------------------------------------
    @api.model
    def _emboux_dns_checker(self):
        """A checker configured from Settings (expectations and resolver)."""
        params = self.env["ir.config_parameter"].sudo()

        def param(key, default):
            return params.get_param(f"emboux_mail.dns_{key}") or default

        expectations = dns_checker.Expectations(
            mx_hosts=tuple(
                param("mx_hosts", "mx1.emboux.com").replace(",", " ").split()
            ),
            spf_include=param("spf_include", "include:emboux.com"),
            dkim_selector=param("dkim_selector", "emboux"),
        )
        settings = dns_checker.ResolverSettings(
            nameservers=dns_checker.parse_nameservers(param("nameservers", "")),
            port=int(param("port", 53)),
            timeout=float(param("timeout", 2.0)),
            lifetime=float(param("lifetime", 4.0)),
        )
        return dns_checker.DnsChecker(expectations, settings)

    def _emboux_dkim_cnames(self):
        """The provider's DKIM CNAMEs of this domain, when it has some."""
        return (
            {
                f"{token}._domainkey.{self.name}": target
                for token, target in (self.dkim_tokens or {}).items()
            }
            if isinstance(self.dkim_tokens, dict)
            else None
        )

    def _emboux_check_dns_now(self):
        """Check the domain's DNS without storing anything (the API's
        ``dns-check``)."""
        self.ensure_one()
        return self._emboux_dns_checker().check(self.name, self._emboux_dkim_cnames())

    def _emboux_check_dns(self, workers=16):
        """Check these domains (``workers`` at a time), store the records
        and the health, and tell the responsible user when health changed."""
        if not self:
            return
        checker = self._emboux_dns_checker()
        cnames = {domain.name: domain._emboux_dkim_cnames() for domain in self}
        results = checker.check_many(self.mapped("name"), workers, cnames)
        now = fields.Datetime.now()
        self.sudo().dns_record_ids.unlink()
        lines = []
        for domain, result in zip(self, results, strict=True):
            lines += [
                {
                    "domain_id": domain.id,
                    "sequence": index,
                    "record_type": record.record_type,
                    "kind": record.kind,
                    "name": record.name,
                    "expected": record.expected,
                    "found": record.found,
                    "status": record.status,
                    "checked_at": now,
                }
                for index, record in enumerate(result.records)
            ]
            domain._emboux_set_dns_state(result.health, now)
        self.env["emboux.mail.dns.record"].sudo().create(lines)
        return results

    def _emboux_set_dns_state(self, health, checked_at):
        previous = self.dns_state
        self.write({"dns_state": health, "dns_checked_at": checked_at})
        if previous in (health, "unchecked"):
            return
        labels = dict(self._fields["dns_state"]._description_selection(self.env))
        self.message_post(
            body=self.env._(
                "DNS health changed from %(old)s to %(new)s.",
                old=labels[previous],
                new=labels[health],
            ),
            subtype_xmlid="mail.mt_note",
        )
        if health in ("warning", "error") and self.user_id:
            self.activity_schedule(
                "mail.mail_activity_data_todo",
                summary=self.env._(
                    "DNS of %(name)s: %(state)s", name=self.name, state=labels[health]
                ),
                user_id=self.user_id.id,
            )

    def action_check_dns(self):
        # portal users may read their domains, not run lookups from Odoo
        self.check_access("write")
        self._emboux_check_dns()
        return True

    @api.model
    def _cron_check_dns(self):
        """Check the domains whose last check is oldest (never checked
        first), one batch per call: the scheduler commits after each call
        and calls again while ``remaining`` is above zero, so a run is
        bounded and the next one resumes where this one stopped."""
        params = self.env["ir.config_parameter"].sudo()
        batch = int(params.get_param("emboux_mail.dns_batch_size", 100))
        due = self._emboux_dns_due_domain()
        domains = self.search(
            due, order="dns_checked_at asc nulls first, id", limit=batch
        )
        domains._emboux_check_dns()
        remaining = self.search_count(due)
        _logger.info("DNS check: %s domains checked, %s due", len(domains), remaining)
        self.env["ir.cron"]._notify_progress(done=len(domains), remaining=remaining)

    @api.model
    def _emboux_dns_due_domain(self):
        """Domains not checked within the scheduled action's interval."""
        cron = self.env.ref(
            "emboux_mail.ir_cron_emboux_mail_dns_check", raise_if_not_found=False
        )
        hours = {"minutes": 1 / 60, "hours": 1, "days": 24, "weeks": 168, "months": 720}
        interval = (
            cron.interval_number * hours.get(cron.interval_type, 1) if cron else 6
        )
        # a little slack, so that a domain checked just before the previous
        # run is due again at this one
        limit = fields.Datetime.now() - timedelta(hours=interval * 0.9)
        return ["|", ("dns_checked_at", "=", False), ("dns_checked_at", "<", limit)]

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

    # -- connected mode (see emboux_mail_sync_mixin) ----------------------------
    def _emboux_sync_created(self):
        """Queue the upstream creation, then ``register-subdomain`` for a
        subdomain of a verified wildcard parent (after it exists upstream)."""
        for domain in self:
            domain._emboux_sync_enqueue(
                "domain_create",
                {"name": domain.name, "partner_ref": domain.partner_ref or None},
            )
            parent = domain.sudo().parent_id
            if parent.is_wildcard and parent.verified:
                domain._emboux_sync_enqueue("domain_register", {"name": domain.name})

    def _emboux_sync_snapshot(self, vals):
        """What ``_emboux_sync_written`` compares, before a write."""
        watched = {"suspended", "parent_id", "is_wildcard"}
        if self._emboux_sync_only(vals) or not watched & set(vals):
            return {}
        if not self._emboux_sync_configured():
            return {}
        return {
            domain.id: (domain.suspended, domain.parent_id.name, domain.is_wildcard)
            for domain in self
        }

    def _emboux_sync_written(self, before):
        for domain in self.filtered(lambda d: d.id in before):
            suspended, parent, wildcard = before[domain.id]
            if domain.suspended != suspended:
                operation = "domain_suspend" if domain.suspended else "domain_activate"
                domain._emboux_sync_enqueue(operation, {"name": domain.name})
            if (domain.parent_id.name, domain.is_wildcard) != (parent, wildcard):
                domain._emboux_sync_enqueue(
                    "domain_parent",
                    {
                        "name": domain.name,
                        "parent_domain": domain.parent_id.name or None,
                        "is_wildcard": domain.is_wildcard,
                    },
                )
