import json
import logging
from collections import Counter
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL, create_index

from ..exceptions import (
    EmbouxForbidden,
    EmbouxQuotaError,
    EmbouxUserError,
    EmbouxValidationError,
)
from ..services import dns_checker, hashing, names
from ..services.stamps import stamp

_logger = logging.getLogger(__name__)

SUSPENSION_REASONS = [
    ("operator", "Operator"),
    ("billing", "Billing"),
    ("customer", "Customer"),
]
VERIFICATION_STATUSES = [
    ("ok", "Found"),
    ("missing", "Missing"),
    ("incorrect", "Incorrect"),
    ("unknown", "Unknown"),
]
# the scheduled check of a pending verification: 15 min, then doubling, at
# most once a day
VERIFY_BACKOFF = timedelta(minutes=15)
VERIFY_BACKOFF_MAX = timedelta(days=1)
# the plan's settings a new domain starts with
PLAN_DEFAULTS = (
    "outbound_daily_limit",
    "outbound_monthly_limit",
    "transfer_monthly_mb",
    "retention_days",
)
# the sending settings a customer may change itself
OUTBOUND_CUSTOMER = ("outbound_daily_limit", "outbound_monthly_limit")
# the sending settings an upstream EmBoux API holds (PUT .../outbound)
OUTBOUND_SYNCED = (
    "outbound_tier",
    "outbound_status",
    "outbound_enforcement",
    "outbound_daily_limit",
    "outbound_monthly_limit",
)
# the one2many fields of a domain that a form may fill on creation
INLINE_CHILDREN = ("mailbox_ids", "alias_ids", "child_ids")
MEBIBYTE = 1024 * 1024
DNS_STATES = [
    ("unchecked", "Not checked"),
    ("ok", "Healthy"),
    ("warning", "Incomplete"),
    ("error", "Failing"),
    ("unknown", "Unknown"),
]


def _percent(part, whole):
    """``part`` as a percentage of ``whole``; 0 when there is no whole (an
    unlimited limit, nothing delivered yet)."""
    return round(100.0 * part / whole, 2) if whole else 0.0


class EmbouxMailDomain(models.Model):
    """A customer's mail domain: the unit of quotas, suspension and DNS."""

    _name = "emboux.mail.domain"
    _description = "Mail Domain"
    _inherit = [
        "mail.thread",
        "mail.activity.mixin",
        "emboux.mail.mixin",
        "emboux.mail.sync.mixin",
        "emboux.mail.audit.mixin",
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
    # not stored: grouped by through the customer, in the reports
    plan_id = fields.Many2one(related="partner_id.emboux_plan_id", string="Plan")
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    suspended = fields.Boolean(tracking=True, readonly=True, copy=False)
    suspension_reason = fields.Selection(
        SUSPENSION_REASONS,
        readonly=True,
        copy=False,
        tracking=True,
        help="Who suspended the domain: a customer may lift only its own suspension.",
    )
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
        default=True,
        readonly=True,
        copy=False,
        tracking=True,
        help="The owner proved control of the name with a DNS record, or an "
        "operator vouched for it. The mail server routes verified domains only.",
    )
    verified_by = fields.Selection(
        [
            ("dns", "DNS record"),
            ("operator", "Operator"),
            ("parent", "Wildcard parent"),
        ],
        readonly=True,
        copy=False,
    )
    verification_token = fields.Char(readonly=True, copy=False)
    verification_record = fields.Char(
        string="Record to Publish",
        compute="_compute_verification_record",
        help="The TXT record, at the domain itself, that proves control of it.",
    )
    verification_status = fields.Selection(
        VERIFICATION_STATUSES, readonly=True, copy=False
    )
    verification_checked_at = fields.Datetime(readonly=True, copy=False)
    verification_next_at = fields.Datetime(
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="When the scheduled check looks for the record again.",
    )
    verification_attempts = fields.Integer(readonly=True, copy=False)
    provider = fields.Char(readonly=True, copy=False)
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
    # -- storage (the mail server reports each mailbox's use) ------------------
    used_mb = fields.Float(
        string="Storage Used (MB)",
        compute="_compute_used_mb",
        search="_search_used_mb",
        digits=(16, 2),
        help="What the domain's mailboxes hold, as the mail server last reported it.",
    )
    retention_days = fields.Integer(
        string="Keep Mail (days)",
        tracking=True,
        help="The mail server deletes messages older than this, every day, "
        "from every mailbox of the domain; 0 keeps them forever.",
    )
    # -- outbound mail (the mail server's policy service enforces it) ----------
    outbound_tier = fields.Selection(
        [("shared", "Shared"), ("dedicated", "Dedicated")],
        string="Sending Tier",
        required=True,
        default="shared",
        tracking=True,
    )
    outbound_status = fields.Selection(
        [("active", "Active"), ("suspended", "Suspended")],
        string="Sending",
        required=True,
        default="active",
        tracking=True,
        help="A suspended domain cannot send; the bounce guard suspends a "
        "domain whose bounce rate crosses its limit.",
    )
    outbound_enforcement = fields.Selection(
        [("hard", "Hard: refuse"), ("soft", "Soft: send and bill")],
        string="Over the Limit",
        required=True,
        default="hard",
        tracking=True,
    )
    outbound_daily_limit = fields.Integer(
        string="Messages per Day", tracking=True, help="0 means unlimited."
    )
    outbound_monthly_limit = fields.Integer(
        string="Messages per Month", tracking=True, help="0 means unlimited."
    )
    transfer_monthly_mb = fields.Integer(
        string="Transfer per Month (MB)", tracking=True, help="0 means unlimited."
    )
    ses_verified = fields.Boolean(
        string="Signing Published",
        readonly=True,
        copy=False,
        help="The last DNS check found the DKIM record the mail is signed with.",
    )
    outbound_sent_today = fields.Integer(
        string="Sent Today", compute="_compute_outbound_figures"
    )
    outbound_sent_month = fields.Integer(
        string="Sent This Month", compute="_compute_outbound_figures"
    )
    outbound_over_month = fields.Integer(
        string="Over Limit This Month", compute="_compute_outbound_figures"
    )
    transfer_used_mb = fields.Float(
        string="Transferred This Month (MB)",
        compute="_compute_outbound_figures",
        digits=(16, 2),
    )
    bounce_count = fields.Integer(string="Bounces", compute="_compute_outbound_figures")
    complaint_count = fields.Integer(
        string="Complaints", compute="_compute_outbound_figures"
    )
    bounce_rate = fields.Float(
        string="Bounce Rate (%)", compute="_compute_outbound_figures", digits=(5, 2)
    )
    complaint_rate = fields.Float(
        string="Complaint Rate (%)", compute="_compute_outbound_figures", digits=(5, 2)
    )
    outbound_daily_usage = fields.Float(compute="_compute_outbound_figures")
    outbound_monthly_usage = fields.Float(compute="_compute_outbound_figures")
    transfer_usage = fields.Float(compute="_compute_outbound_figures")
    dkim_key_ids = fields.One2many(
        "emboux.mail.dkim.key",
        "domain_id",
        readonly=True,
        context={"active_test": False},
    )
    dkim_record_name = fields.Char(string="DKIM Record", compute="_compute_dkim_record")
    dkim_record_value = fields.Char(string="DKIM Value", compute="_compute_dkim_record")

    _sql_constraints = [
        ("name_uniq", "unique(name)", "This domain already exists."),
        (
            "outbound_limits_positive",
            "CHECK(outbound_daily_limit >= 0 AND outbound_monthly_limit >= 0 "
            "AND transfer_monthly_mb >= 0)",
            "Sending limits cannot be negative.",
        ),
        (
            "retention_positive",
            "CHECK(retention_days >= 0)",
            "A retention cannot be negative.",
        ),
    ]

    def init(self):
        # the API lists a tenant's domains newest first, a page at a time:
        # an index in that order serves a page without sorting them all
        create_index(
            self.env.cr,
            f"{self._table}_partner_id_newest_idx",
            self._table,
            ["partner_id", "create_date DESC", "id DESC"],
        )

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

    def _compute_used_mb(self):
        used = self.env["emboux.mail.mailbox"]._emboux_used_bytes("domain_id", self.ids)
        for domain in self:
            domain.used_mb = used.get(domain.id, 0) / MEBIBYTE

    def _search_used_mb(self, operator, value):
        return self.env["emboux.mail.mailbox"]._emboux_search_sql(
            self, "used_mb", operator, value
        )

    def _field_to_sql(self, alias, fname, query=None, flush=True):
        if fname == "used_mb":
            return self.env["emboux.mail.mailbox"]._emboux_total_sql(alias, "domain_id")
        return super()._field_to_sql(alias, fname, query, flush)

    @api.depends(
        "outbound_daily_limit", "outbound_monthly_limit", "transfer_monthly_mb"
    )
    def _compute_outbound_figures(self):
        figures = self.env["emboux.mail.outbound.counter"]._emboux_figures(self)
        for domain in self:
            found = figures[domain.id]
            delivered = found["delivered_count"]
            used_mb = found["transfer_month_bytes"] / MEBIBYTE
            domain.update(
                {
                    "outbound_sent_today": found["sent_today"],
                    "outbound_sent_month": found["sent_month"],
                    "outbound_over_month": found["over_month"],
                    "transfer_used_mb": used_mb,
                    "bounce_count": found["bounce_count"],
                    "complaint_count": found["complaint_count"],
                    "bounce_rate": _percent(found["bounce_count"], delivered),
                    "complaint_rate": _percent(found["complaint_count"], delivered),
                    "outbound_daily_usage": _percent(
                        found["sent_today"], domain.outbound_daily_limit
                    ),
                    "outbound_monthly_usage": _percent(
                        found["sent_month"], domain.outbound_monthly_limit
                    ),
                    "transfer_usage": _percent(used_mb, domain.transfer_monthly_mb),
                }
            )

    @api.depends("dkim_key_ids", "dkim_tokens")
    def _compute_dkim_record(self):
        for domain in self:
            records = domain._emboux_dkim_records(generate=False)
            txt = [r for r in records if r[0] == "TXT"]
            domain.dkim_record_name = txt[0][1] if txt else False
            domain.dkim_record_value = txt[0][2] if txt else False

    @api.depends("verification_token")
    def _compute_verification_record(self):
        for domain in self:
            domain.verification_record = (
                dns_checker.VERIFICATION_PREFIX + domain.verification_token
                if domain.verification_token
                else False
            )

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
            tenant = Partner.browse(vals.get("partner_id"))._emboux_tenant()
            vals["partner_id"] = tenant.id
            if "parent_id" not in vals:
                parent = self._emboux_wildcard_parent(vals["name"], tenant)
                vals["parent_id"] = parent.id
            vals.update(self._emboux_verification_vals(vals, tenant))
            vals.update(self._emboux_plan_defaults(vals, tenant))
        self._emboux_check_unique("name", [vals["name"] for vals in vals_list])
        tenants = Partner.browse(
            [v["partner_id"] for v in vals_list if v.get("partner_id")]
        )
        counts = self._emboux_lock_tenants(tenants)
        for tenant in tenants:
            self._emboux_check_domain_quota(
                tenant, counts[tenant.id], tenants.ids.count(tenant.id)
            )
        # a form saves a new domain with its inline mailboxes, aliases and
        # subdomains: they are created once the domain is, so that its own
        # upstream creation is queued before theirs (dependency order)
        inline = [
            {name: vals.pop(name) for name in INLINE_CHILDREN if name in vals}
            for vals in vals_list
        ]
        duplicate = self._emboux_duplicate_error(vals_list[0]["name"])
        domains = self._emboux_insert(super().create, vals_list, duplicate)
        self._emboux_lock_tenants(tenants)
        domains._emboux_sync_created()
        self.env["emboux.mail.webhook.event"]._emboux_emit("domain.created", domains)
        for domain in domains.filtered("verified"):
            domain._emboux_log_verified()
        for domain, children in zip(domains, inline, strict=True):
            if children:
                domain.write(children)
        return domains

    @api.model
    def _emboux_create_for_customer(self, tenant, name):
        """A domain a customer adds (REST API, portal): never a public
        suffix nor a name at or under another party's domain, and not
        verified until its owner proves control (``action_verify``)."""
        name = self._emboux_normalize("domain", name, self.env._("Domain"))
        self._emboux_check_available(name, tenant)
        return self.create({"name": name, "partner_id": tenant.id, "verified": False})

    def write(self, vals):
        if "name" in vals and any(domain.name != vals["name"] for domain in self):
            raise EmbouxUserError(
                self.env._("Domain: a domain cannot be renamed; create a new one.")
            )
        if "partner_id" in vals:
            new_owner = self.env["res.partner"].browse(vals.pop("partner_id"))
            for domain in self.filtered(lambda d: d.partner_id != new_owner):
                domain._emboux_transfer_owner(new_owner)
        before = self._emboux_sync_snapshot(vals)
        reactivated = (
            self.filtered(lambda d: d.outbound_status == "suspended")
            if vals.get("outbound_status") == "active"
            else self.browse()
        )
        result = super().write(vals) if vals else True
        self._emboux_sync_written(before)
        if reactivated:
            self.env["emboux.mail.outbound.counter"].sudo().search(
                [("domain_id", "in", reactivated.ids)]
            )._emboux_reset_guard()
        return result

    def unlink(self):
        """Delete the domains with their mailboxes and aliases (a cascade the
        ORM runs, so that chatter and later hooks see every record go)."""
        tenants = self.partner_id
        for domain in self:
            domain._emboux_sync_enqueue(
                "domain_delete", {"name": domain.name}, mark=False
            )
        self.env["emboux.mail.webhook.event"]._emboux_emit("domain.deleted", self)
        self.with_context(emboux_cascade=True).mailbox_ids.unlink()
        self.with_context(emboux_cascade=True).alias_ids.unlink()
        result = super().unlink()
        self._emboux_lock_tenants(tenants)
        # back within the plan: billing's suspensions are lifted at once
        self.env["emboux.mail.grace"]._emboux_run_running(tenants)
        return result

    def emboux_delete_confirmation(self):
        """What the delete dialogs ask: deleting a domain deletes its
        mailboxes and aliases too, which the generic question does not say."""
        mailboxes = self.env["emboux.mail.mailbox"].search_count(
            [("domain_id", "in", self.ids)]
        )
        aliases = self.env["emboux.mail.alias"].search_count(
            [("domain_id", "in", self.ids)]
        )
        if len(self) == 1:
            return self.env._(
                "Delete the domain %(name)s? Its mailboxes (%(mailboxes)s) and "
                "aliases (%(aliases)s) are deleted with it.",
                name=self.name,
                mailboxes=mailboxes,
                aliases=aliases,
            )
        return self.env._(
            "Delete these %(count)s domains? Their mailboxes (%(mailboxes)s) and "
            "aliases (%(aliases)s) are deleted with them.",
            count=len(self),
            mailboxes=mailboxes,
            aliases=aliases,
        )

    # -- rules -----------------------------------------------------------------
    @api.model
    def _emboux_check_available(self, name, tenant):
        """Refuse a name no customer may claim: a public suffix, or a name
        equal to or under a domain of another party (or of nobody)."""
        if names.is_public_suffix(name):
            raise EmbouxValidationError(
                self.env._(
                    "Domain: %(value)r is a public suffix, under which anyone can "
                    "register names: it cannot be hosted.",
                    value=name,
                ),
                detail="Domain is a public suffix",
            )
        taken = (
            self.sudo()
            .with_context(active_test=False)
            .search_count(
                [
                    ("name", "in", names.self_and_parents(name)),
                    "|",
                    ("partner_id", "=", False),
                    ("partner_id", "!=", tenant.id),
                ],
                limit=1,
            )
        )
        if taken:
            raise self._emboux_duplicate_error(name)

    @api.model
    def _emboux_plan_defaults(self, vals, tenant):
        """The sending limits and the retention a new domain starts with: its
        owner's plan's (or Settings'). A subdomain of a wildcard shares its
        parent's tier and enforcement, as it shares its signing identity."""
        defaults = {name: tenant._emboux_plan_value(name) for name in PLAN_DEFAULTS}
        defaults["outbound_enforcement"] = (
            tenant.emboux_plan_id.outbound_enforcement or "hard"
        )
        parent = self.sudo().browse(vals.get("parent_id"))
        if parent.is_wildcard:
            defaults["outbound_tier"] = parent.outbound_tier
            defaults["outbound_enforcement"] = parent.outbound_enforcement
        return {name: value for name, value in defaults.items() if name not in vals}

    def _emboux_set_outbound(self, values, by):
        """Change the sending settings. A customer (``by``) may change only
        the two message limits, within its plan's ceilings; the tier, the
        enforcement, the status and the transfer are the operator's."""
        if by == "customer":
            if set(values) - set(OUTBOUND_CUSTOMER):
                raise EmbouxForbidden(
                    self.env._(
                        "Only your provider can change the sending tier, "
                        "enforcement, status and transfer of a domain."
                    ),
                    "Master token required",
                )
            for domain in self:
                for name, value in values.items():
                    ceiling = domain.partner_id._emboux_plan_value(f"max_{name}")
                    if ceiling and not 0 < value <= ceiling:
                        raise EmbouxQuotaError(
                            self.env._(
                                "%(field)s: %(value)s is not allowed; your plan "
                                "allows 1 to %(ceiling)s.",
                                field=self._fields[name].get_description(self.env)[
                                    "string"
                                ],
                                value=value,
                                ceiling=ceiling,
                            ),
                            f"Outbound limit exceeds plan maximum ({ceiling})",
                        )
        self.write(values)

    def _emboux_api_dict(self):
        """The domain as the EmBoux API and the webhooks show it."""
        self.ensure_one()
        return {"id": self.id, "name": self.name, "created_at": stamp(self.create_date)}

    def _emboux_api_item(self):
        """The domain in ``GET /domains/``: the seed's fields, then its
        state."""
        self.ensure_one()
        return json.loads(self._emboux_api_items(self._as_query())[1])[0]

    @api.model
    def _emboux_api_items(self, query):
        """``(count, JSON array)`` of the ``_emboux_api_item`` of each domain
        ``query`` selects, in its order, written by PostgreSQL in that one
        query: the API lists a tenant's domains a thousand at a time, and
        reading them through the cache, then encoding them, costs that
        request several times the rest of its work. The aggregate keeps the
        order of the sorted subquery it reads."""
        self.flush_model()
        table = query.table
        parent = query.left_join(table, "parent_id", self._table, "id", "parent_id")

        def column(name, alias=table):
            return SQL.identifier(alias, name)

        values = {
            "id": column("id"),
            "name": column("name"),
            # JSON writes a timestamp as ISO 8601, as ``stamp`` does
            "created_at": SQL("date_trunc('second', %s)", column("create_date")),
            "verified": SQL("COALESCE(%s, false)", column("verified")),
            "suspended": SQL("COALESCE(%s, false)", column("suspended")),
            "suspension_reason": column("suspension_reason"),
            "parent_domain": column("name", parent),
            "is_wildcard": SQL("COALESCE(%s, false)", column("is_wildcard")),
        }
        items = query.select(
            *(
                SQL("%s AS %s", value, SQL.identifier(key))
                for key, value in values.items()
            )
        )
        self.env.cr.execute(
            SQL(
                "SELECT count(*), COALESCE(json_agg(item), '[]')::text FROM (%s) item",
                items,
            )
        )
        return self.env.cr.fetchone()

    def _emboux_set_retention(self, days, by):
        """Keep the domains' mail ``days`` days (0: forever). A customer
        (``by``) stays within its plan's longest retention; the operator sets
        any. A value left as it is is not weighed again: what the operator
        granted beyond the plan survives a customer's save."""
        if by == "customer":
            for domain in self.filtered(lambda d: d.retention_days != days):
                ceiling = domain.partner_id._emboux_plan_value("max_retention_days")
                if ceiling and not 0 < days <= ceiling:
                    raise EmbouxQuotaError(
                        self.env._(
                            "Keep mail: %(value)s days is not allowed; your plan "
                            "keeps mail 1 to %(ceiling)s days.",
                            value=days,
                            ceiling=ceiling,
                        ),
                        f"Retention exceeds plan maximum ({ceiling} days)",
                    )
        self.write({"retention_days": days})

    def _emboux_bounce_guard_tripped(self, counter):
        """Stop the domain's outbound mail: too many of its recipients
        bounced. The operator looks into it and activates it again."""
        self.ensure_one()
        self.write({"outbound_status": "suspended"})
        rate = _percent(counter.bounce_count, counter.delivered_count)
        self.env["emboux.mail.webhook.event"]._emboux_emit(
            "outbound.bounce_guard_tripped",
            self,
            bounce_count=counter.bounce_count,
            delivered_count=counter.delivered_count,
            bounce_rate=rate,
        )
        self.message_post(
            body=self.env._(
                "Outbound mail suspended by the bounce guard: %(bounces)s of "
                "%(deliveries)s recipients bounced (%(rate)s%%).",
                bounces=counter.bounce_count,
                deliveries=counter.delivered_count,
                rate=rate,
            ),
            subtype_xmlid="mail.mt_note",
        )
        if self.user_id:
            self.activity_schedule(
                "mail.mail_activity_data_todo",
                summary=self.env._(
                    "Bounce guard stopped %(name)s sending", name=self.name
                ),
                note=self.env._(
                    "Find why its mail bounces, then set Sending back to Active."
                ),
                user_id=self.user_id.id,
            )

    @api.model
    def _emboux_verification_vals(self, vals, tenant):
        """How a new domain starts: verified when its creator vouches for it
        (the default: an operator or a master token), or when it is a
        subdomain of its own owner's verified wildcard; otherwise pending,
        with the token of the TXT record that will prove control."""
        if vals.get("verified", True):
            return {
                "verified": True,
                "verified_by": vals.get("verified_by", "operator"),
            }
        parent = self.sudo().browse(vals.get("parent_id"))
        if parent.is_wildcard and parent.verified and parent.partner_id == tenant:
            return {"verified": True, "verified_by": "parent"}
        return {
            "verified": False,
            "verified_by": False,
            "verification_token": vals.get("verification_token")
            or hashing.generate_verification_token(),
            "verification_next_at": fields.Datetime.now() + VERIFY_BACKOFF,
        }

    def _emboux_check_active(self):
        """Nothing new on a suspended domain (deletes still work). What the
        reconcile imports (context ``emboux_sync_skip``) already exists
        upstream: it is mirrored as it is."""
        if self.env.context.get("emboux_sync_skip"):
            return
        for domain in self.filtered("suspended"):
            raise EmbouxForbidden(
                self.env._(
                    "The domain %(domain)s is suspended: nothing can be added to it "
                    "and passwords cannot change until it is reactivated.",
                    domain=domain.name,
                ),
                "Domain suspended",
            )

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
    def _emboux_wildcard_parent(self, name, tenant):
        """The closest wildcard domain of ``tenant`` that ``name`` is a
        subdomain of: another tenant's wildcard never adopts a name."""
        candidates = names.parent_candidates(name)
        if not candidates or not tenant:
            return self.browse()
        parents = self.sudo().search(
            [
                ("name", "in", candidates),
                ("is_wildcard", "=", True),
                ("partner_id", "=", tenant.id),
            ]
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
        # the owner itself, past the rules of ``write`` that led here
        super().write({"partner_id": new_owner.id})
        self._emboux_lock_tenants(old_owner | new_owner)
        self._emboux_log(
            "owner_transferred",
            self.env._(
                "from %(old)s to %(new)s",
                old=old_owner.emboux_partner_ref or self.env._("nobody"),
                new=new_owner.emboux_partner_ref or self.env._("nobody"),
            ),
        )
        self._emboux_sync_enqueue(
            "domain_owner",
            {
                "name": self.name,
                "partner_ref": new_owner.emboux_partner_ref or None,
                "previous_ref": old_owner.emboux_partner_ref or None,
            },
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

    def _emboux_dkim_records(self, generate=True):
        """The DKIM records of this domain as ``(type, name, value)``: the
        provider's CNAMEs when it signs, else the TXT of the key the mail
        server signs with (made now if missing and ``generate``)."""
        self.ensure_one()
        if isinstance(self.dkim_tokens, dict) and self.dkim_tokens:
            return [
                ("CNAME", f"{token}._domainkey.{self.name}", target)
                for token, target in sorted(self.dkim_tokens.items())
            ]
        # the public half only: published in DNS, readable by anyone
        key = self._emboux_dkim_key(generate).sudo()
        return [("TXT", key.record_name, key.record_value)] if key else []

    def _emboux_dkim_signer(self):
        """The domain whose identity signs this one's mail: a subdomain of a
        wildcard signs as its parent (one key, one record to publish)."""
        self.ensure_one()
        return self.parent_id if self.parent_id.is_wildcard else self

    def _emboux_dkim_key(self, generate=True):
        """The key this domain's mail is signed with."""
        signer = self._emboux_dkim_signer()
        key = signer.sudo().dkim_key_ids.filtered("active")[:1]
        if not key and generate:
            key = self.env["emboux.mail.dkim.key"]._emboux_generate(
                signer, signer._emboux_next_selector()
            )
        return key

    def _emboux_next_selector(self):
        """The configured selector, numbered after the first key: a rotated
        key is published beside the old one, never in its place."""
        base = self._emboux_dns_checker().expectations.dkim_selector
        used = set(
            self.env["emboux.mail.dkim.key"]
            .sudo()
            .with_context(active_test=False)
            .search([("domain_id", "=", self.id)])
            .mapped("selector")
        )
        selector, number = base, 1
        while selector in used:
            number += 1
            selector = f"{base}{number}"
        return selector

    def action_rotate_dkim(self):
        """Sign with a new key from now on; its record must be published."""
        self.check_access("write")
        for domain in self:
            signer = domain._emboux_dkim_signer()
            if signer != domain:
                raise EmbouxUserError(
                    self.env._(
                        "%(name)s signs its mail with the key of %(parent)s: "
                        "rotate that one.",
                        name=domain.name,
                        parent=signer.name,
                    )
                )
            key = self.env["emboux.mail.dkim.key"]._emboux_generate(
                domain, domain._emboux_next_selector()
            )
            domain.message_post(
                body=self.env._(
                    "New DKIM key: publish the TXT record %(name)s.",
                    name=key.record_name,
                ),
                subtype_xmlid="mail.mt_note",
            )
        return True

    def _emboux_check_dns_now(self):
        """Check the domain's DNS without storing anything (the API's
        ``dns-check``)."""
        self.ensure_one()
        return self._emboux_dns_checker().check(self.name, self._emboux_dkim_records())

    def _emboux_check_dns(self, workers=16):
        """Check these domains (``workers`` at a time), store the records
        and the health, and tell the responsible user when health changed."""
        if not self:
            return
        checker = self._emboux_dns_checker()
        dkim = {domain.name: domain._emboux_dkim_records() for domain in self}
        results = checker.check_many(self.mapped("name"), workers, dkim)
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
            signing = [r.status for r in result.records if r.kind == "DKIM"]
            published = bool(signing) and set(signing) == {dns_checker.OK}
            if domain.ses_verified != published:
                domain.ses_verified = published
            domain._emboux_set_dns_state(result.health, now)
        self.env["emboux.mail.dns.record"].sudo().create(lines)
        self.env["emboux.mail.dns.health"].sudo()._emboux_record(self)
        return results

    def _emboux_set_dns_state(self, health, checked_at):
        previous = self.dns_state
        self.write({"dns_state": health, "dns_checked_at": checked_at})
        if previous in (health, "unchecked"):
            return
        self.env["emboux.mail.webhook.event"]._emboux_emit(
            "domain.dns_health_changed", self, previous=previous, health=health
        )
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
        """Check now, and say what was found (the view reloads under it): a
        domain's health, or how many of the selected domains are in each."""
        # portal users may read their domains, not run lookups from Odoo
        self.check_access("write")
        self._emboux_check_dns()
        states = dict(self._fields["dns_state"]._description_selection(self.env))
        healthy = all(domain.dns_state == "ok" for domain in self)
        if len(self) == 1:
            message = f"{self.name}: {states[self.dns_state]}"
        else:
            counts = Counter(self.mapped("dns_state"))
            message = self.env._(
                "%(count)s domains checked. %(states)s",
                count=len(self),
                states=", ".join(
                    f"{label}: {counts[state]}"
                    for state, label in states.items()
                    if counts[state]
                ),
            )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": self.env._("DNS checked"),
                "message": message,
                "type": "success" if healthy else "warning",
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    @api.model
    def _cron_check_dns(self):
        """Check the domains whose last check is oldest (never checked
        first), one batch per call: the scheduler commits after each call
        and calls again while ``remaining`` is above zero, so a run is
        bounded and the next one resumes where this one stopped."""
        params = self.env["ir.config_parameter"].sudo()
        batch = int(params.get_param("emboux_mail.dns_batch_size", 100))
        due = self._emboux_dns_due_domain()
        self._emboux_verify_due(batch)
        domains = self.search(
            due, order="dns_checked_at asc nulls first, id", limit=batch
        )
        domains._emboux_check_dns()
        remaining = self.search_count(due)
        _logger.info("DNS check: %s domains checked, %s due", len(domains), remaining)
        self.env["ir.cron"]._notify_progress(done=len(domains), remaining=remaining)
        if not remaining:
            # once per run, after its last batch
            self.env["emboux.mail.dns.health"].sudo()._emboux_gc()

    @api.model
    def _cron_prepare_dkim(self, batch=100):
        """Give the domains without a key one, a batch per call, so that
        forms show the record to publish before the first DNS check (a key
        takes tens of milliseconds to generate: never on the way of a
        create)."""
        signers = self.search([("dkim_key_ids", "=", False)], order="id")
        signers = signers.mapped(lambda domain: domain._emboux_dkim_signer())
        todo = signers.filtered(lambda domain: not domain.dkim_key_ids)
        if not todo:
            return
        # a domain another transaction holds (its first DNS check makes the
        # key too) is left for the next call: waiting for it, while holding
        # the domains before it, could deadlock with the DNS check's order
        self.env.cr.execute(
            SQL(
                "SELECT id FROM emboux_mail_domain WHERE id IN %s ORDER BY id "
                "FOR NO KEY UPDATE SKIP LOCKED",
                tuple(todo[:batch].ids),
            )
        )
        free = self.browse([row[0] for row in self.env.cr.fetchall()])
        for domain in free:
            domain._emboux_dkim_key()
        self.env["ir.cron"]._notify_progress(
            done=len(free), remaining=len(todo) - len(free)
        )

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
        self.check_access("write")
        self._emboux_suspend("operator")

    def action_activate(self):
        self.check_access("write")
        self._emboux_activate("operator")

    def _emboux_suspend(self, reason):
        """Suspend with ``reason`` (operator, billing, customer). A
        customer's suspension never replaces a stronger one, which it could
        then lift."""
        label = self._emboux_label("suspension_reason", reason)
        for domain in self:
            if domain.suspended and reason == "customer":
                continue
            if (domain.suspended, domain.suspension_reason) == (True, reason):
                continue
            domain.write({"suspended": True, "suspension_reason": reason})
            domain._emboux_log("domain_suspended", label)
            self.env["emboux.mail.webhook.event"]._emboux_emit(
                "domain.suspended", domain, reason=reason
            )

    def _emboux_activate(self, by):
        """Lift a suspension: an operator lifts any, billing or a customer
        only its own (403 naming who suspended the domain)."""
        for domain in self.filtered("suspended"):
            reason = domain.suspension_reason or "operator"
            if by != "operator" and reason != by:
                details = {
                    "operator": "Domain suspended by the operator",
                    "billing": "Domain suspended for billing",
                }
                raise EmbouxForbidden(
                    self.env._(
                        "The domain %(domain)s was suspended by %(who)s: only they "
                        "can reactivate it.",
                        domain=domain.name,
                        who=self._emboux_label("suspension_reason", reason),
                    ),
                    details.get(reason, "Domain suspended by the operator"),
                )
            domain.write({"suspended": False, "suspension_reason": False})
            domain._emboux_log(
                "domain_activated", self._emboux_label("suspension_reason", by)
            )
            self.env["emboux.mail.webhook.event"]._emboux_emit(
                "domain.activated", domain, reason=reason, by=by
            )

    def _emboux_log(self, event, detail=""):
        self.env["emboux.mail.security.log"]._emboux_log(event, self, detail)

    @api.model
    def _emboux_label(self, field, value):
        """The translated label of a selection ``value`` of ``field``."""
        selection = self._fields[field]._description_selection(self.env)
        return dict(selection).get(value, "")

    # -- ownership proof ---------------------------------------------------------
    def action_verify(self):
        """Look for the TXT record now (the *Verify* button)."""
        self.check_access("write")
        self._emboux_verify()
        return True

    def action_vouch(self):
        """An operator vouches for the domain: verified without the record."""
        self.check_access("write")
        for domain in self.filtered(lambda d: not d.verified):
            domain.write({"verified": True, "verified_by": "operator"})
            domain._emboux_log_verified()
        return True

    def _emboux_verify(self):
        """Check the pending domains' TXT records; verify those that publish
        theirs, and schedule the next look at the others with a backoff.
        Returns ``{domain: RecordCheck}``."""
        pending = self.filtered(lambda d: not d.verified and d.verification_token)
        if not pending:
            return {}
        checker = self._emboux_dns_checker()
        now = fields.Datetime.now()
        results = {}
        for domain in pending:
            record = checker.check_verification(domain.name, domain.verification_token)
            results[domain] = record
            vals = {
                "verification_status": record.status,
                "verification_checked_at": now,
            }
            if record.status == dns_checker.OK:
                vals.update(
                    verified=True, verified_by="dns", verification_next_at=False
                )
            else:
                attempts = domain.verification_attempts + 1
                delay = min(VERIFY_BACKOFF * 2 ** (attempts - 1), VERIFY_BACKOFF_MAX)
                vals.update(
                    verification_attempts=attempts, verification_next_at=now + delay
                )
            domain.sudo().write(vals)
            if domain.verified:
                domain._emboux_log_verified()
                domain._emboux_sync_enqueue("domain_verify", {"name": domain.name})
        return results

    def _emboux_log_verified(self):
        for domain in self:
            domain._emboux_log(
                "domain_verified", self._emboux_label("verified_by", domain.verified_by)
            )
            self.env["emboux.mail.webhook.event"]._emboux_emit(
                "domain.verified", domain, verified_by=domain.verified_by
            )

    @api.model
    def _emboux_verify_due(self, limit):
        """The scheduled look at pending verifications whose time came."""
        due = self.search(
            [
                ("verified", "=", False),
                ("verification_next_at", "<=", fields.Datetime.now()),
            ],
            order="verification_next_at, id",
            limit=limit,
        )
        due._emboux_verify()
        return due

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
            payload = {"name": domain.name, "partner_ref": domain.partner_ref or None}
            if not domain.verified:
                # the upstream must not route it either, and looks for the
                # same record as this database
                payload.update(
                    verified=False, verification_token=domain.verification_token
                )
            domain._emboux_sync_enqueue("domain_create", payload)
            parent = domain.sudo().parent_id
            if parent.is_wildcard and parent.verified:
                domain._emboux_sync_enqueue("domain_register", {"name": domain.name})

    def _emboux_sync_lanes(self):
        """A domain's changes are ordered with its parent's and its
        tenant's (keys, other domains)."""
        self.ensure_one()
        lanes = {f"domain:{self.name}"}
        if self.parent_id:
            lanes.add(f"domain:{self.parent_id.name}")
        if self.partner_ref:
            lanes.add(f"tenant:{self.partner_ref}")
        return lanes

    def _emboux_sync_snapshot(self, vals):
        """What ``_emboux_sync_written`` compares, before a write."""
        watched = {
            "suspended",
            "suspension_reason",
            "parent_id",
            "is_wildcard",
            *OUTBOUND_SYNCED,
            "transfer_monthly_mb",
            "retention_days",
        }
        if self._emboux_sync_only(vals) or not watched & set(vals):
            return {}
        if not self._emboux_sync_configured():
            return {}
        return {
            domain.id: {
                "suspended": domain.suspended,
                "reason": domain.suspension_reason or None,
                "parent_domain": domain.parent_id.name or None,
                "is_wildcard": domain.is_wildcard,
                "outbound": {name: domain[name] for name in OUTBOUND_SYNCED},
                "transfer_monthly_mb": domain.transfer_monthly_mb,
                "retention_days": domain.retention_days,
            }
            for domain in self
        }

    def _emboux_sync_written(self, before):
        for domain in self.filtered(lambda d: d.id in before):
            old = before[domain.id]
            reason = domain.suspension_reason or None
            if (domain.suspended, reason) != (old["suspended"], old["reason"]):
                if domain.suspended:
                    previous = old["reason"] if old["suspended"] else None
                    domain._emboux_sync_enqueue(
                        "domain_suspend",
                        {
                            "name": domain.name,
                            "reason": reason,
                            "previous_reason": previous,
                        },
                    )
                else:
                    domain._emboux_sync_enqueue(
                        "domain_activate",
                        {"name": domain.name, "previous_reason": old["reason"]},
                    )
            parent = {
                "parent_domain": domain.parent_id.name or None,
                "is_wildcard": domain.is_wildcard,
            }
            if parent != {k: old[k] for k in parent}:
                domain._emboux_sync_enqueue(
                    "domain_parent",
                    dict(
                        parent,
                        name=domain.name,
                        previous={k: old[k] for k in parent},
                    ),
                )
            outbound = {name: domain[name] for name in OUTBOUND_SYNCED}
            changed = {k: v for k, v in outbound.items() if v != old["outbound"][k]}
            if changed:
                domain._emboux_sync_enqueue(
                    "domain_outbound",
                    {
                        "name": domain.name,
                        "values": changed,
                        "previous": {k: old["outbound"][k] for k in changed},
                    },
                )
            if domain.transfer_monthly_mb != old["transfer_monthly_mb"]:
                domain._emboux_sync_enqueue(
                    "domain_transfer",
                    {
                        "name": domain.name,
                        "transfer_monthly_mb": domain.transfer_monthly_mb,
                        "previous_mb": old["transfer_monthly_mb"],
                    },
                )
            if domain.retention_days != old["retention_days"]:
                domain._emboux_sync_enqueue(
                    "domain_retention",
                    {
                        "name": domain.name,
                        "retention_days": domain.retention_days,
                        "previous_days": old["retention_days"],
                    },
                )
