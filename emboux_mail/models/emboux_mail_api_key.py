from odoo import api, fields, models
from odoo.tools import SQL

from ..exceptions import EmbouxForbidden, EmbouxValidationError
from ..services import hashing
from ..services.stamps import stamp

QUOTA_FIELDS = ("domains_allowed", "mailboxes_per_domain", "aliases_per_mailbox")
SYNCED_FIELDS = {*QUOTA_FIELDS, "active", "expires_at", "plan_id", "quota_override"}


class EmbouxMailApiKey(models.Model):
    """A tenant's Bearer token for the EmBoux API.

    As Odoo core's ``res.users.apikeys``, the token is shown once and only a
    passlib hash (column ``token_hash``, created in ``init`` so that it is not
    an ORM field and can never be read through RPC) and a short lookup index
    are stored. ``token`` is a write-only field: assigning it hashes it.
    """

    _name = "emboux.mail.api.key"
    _inherit = [
        "mail.thread",
        "emboux.mail.sync.mixin",
        "emboux.mail.audit.mixin",
    ]
    _description = "Mail Hosting API Key"
    _order = "create_date desc, id desc"

    name = fields.Char(
        required=True, tracking=True, default=lambda self: self.env._("API key")
    )
    partner_id = fields.Many2one(
        "res.partner",
        string="Customer",
        index=True,
        ondelete="cascade",
        domain=[("is_company", "=", True)],
    )
    partner_ref = fields.Char(related="partner_id.emboux_partner_ref")
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    is_master = fields.Boolean(
        string="Master Key",
        help="Sees every tenant and may manage API keys, like the server's "
        "EMBOUX_API_KEY.",
    )
    active = fields.Boolean(default=True, tracking=True)
    expires_at = fields.Datetime(string="Expires On", tracking=True)
    last_used_at = fields.Datetime(string="Last Used", readonly=True, copy=False)
    plan_id = fields.Many2one(
        "emboux.mail.plan",
        compute="_compute_plan_id",
        store=True,
        readonly=False,
    )
    quota_override = fields.Boolean(
        string="Own Quotas", help="Use the quotas below instead of the plan's."
    )
    domains_allowed = fields.Integer(
        string="Domains per Customer",
        compute="_compute_quotas",
        store=True,
        readonly=False,
    )
    mailboxes_per_domain = fields.Integer(
        string="Mailboxes per Domain",
        compute="_compute_quotas",
        store=True,
        readonly=False,
    )
    aliases_per_mailbox = fields.Integer(
        string="Aliases per Mailbox",
        compute="_compute_quotas",
        store=True,
        readonly=False,
    )
    domains_used = fields.Integer(related="partner_id.emboux_domain_count")
    token_index = fields.Char(readonly=True, copy=False, index=True)
    token = fields.Char(
        compute="_compute_token",
        inverse="_inverse_token",
        copy=False,
        help="Write-only: the token is hashed when set and never read back.",
    )
    upstream_token_encrypted = fields.Char(
        copy=False,
        groups="base.group_system",
        help="Connected mode only: the token, needed to address this key on the "
        "upstream EmBoux API, encrypted with the server's EMBOUX_SECRET_KEY.",
    )
    state = fields.Selection(
        [("active", "Active"), ("expired", "Expired"), ("revoked", "Revoked")],
        compute="_compute_state",
    )

    _sql_constraints = [
        (
            "tenant_or_master",
            "CHECK(is_master OR partner_id IS NOT NULL)",
            "An API key belongs to a customer unless it is a master key.",
        ),
        (
            "quotas_positive",
            "CHECK(domains_allowed >= 0 AND mailboxes_per_domain >= 0 "
            "AND aliases_per_mailbox >= 0)",
            "Quotas cannot be negative.",
        ),
    ]

    def init(self):
        self.env.cr.execute(
            SQL(
                "ALTER TABLE %s ADD COLUMN IF NOT EXISTS token_hash varchar",
                SQL.identifier(self._table),
            )
        )

    @api.depends("partner_id.emboux_plan_id")
    def _compute_plan_id(self):
        for key in self:
            key.plan_id = key.partner_id.emboux_plan_id

    @api.depends(
        "quota_override",
        "plan_id.domains_allowed",
        "plan_id.mailboxes_per_domain",
        "plan_id.aliases_per_mailbox",
    )
    def _compute_quotas(self):
        defaults = self.env["emboux.mail.plan"]._default_quotas()
        for key in self.filtered(lambda k: not k.quota_override):
            source = key.plan_id or defaults
            for name in QUOTA_FIELDS:
                key[name] = source[name]

    def _compute_token(self):
        self.token = False

    def _inverse_token(self):
        for key in self.filtered("token"):
            key._emboux_set_token(key.token)

    @api.depends("active", "expires_at")
    def _compute_state(self):
        now = fields.Datetime.now()
        for key in self:
            if not key.active:
                key.state = "revoked"
            elif key.expires_at and key.expires_at <= now:
                key.state = "expired"
            else:
                key.state = "active"

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("partner_id"):
                tenant = self.env["res.partner"].browse(vals["partner_id"])
                vals["partner_id"] = tenant._emboux_tenant().id
            if any(name in vals for name in QUOTA_FIELDS):
                # quotas not given keep the plan's (or the defaults)
                vals.setdefault("quota_override", True)
                tenant = self.env["res.partner"].browse(vals.get("partner_id"))
                source = (
                    tenant.emboux_plan_id
                    or self.env["emboux.mail.plan"]._default_quotas()
                )
                for name in QUOTA_FIELDS:
                    vals.setdefault(name, source[name])
        keys = super().create(vals_list)
        keys._emboux_log("key_created")
        self.env["emboux.mail.webhook.event"]._emboux_emit("key.created", keys)
        for key in keys:
            key._emboux_sync_key("key_create")
        return keys

    def write(self, vals):
        toggled = self.filtered(
            lambda key: "active" in vals and key.active != bool(vals["active"])
        )
        result = super().write(vals)
        if toggled:
            event = "key_restored" if vals["active"] else "key_revoked"
            toggled._emboux_log(event)
            if not vals["active"]:
                self.env["emboux.mail.webhook.event"]._emboux_emit(
                    "key.revoked", toggled
                )
        if not self._emboux_sync_only(vals) and set(vals) & SYNCED_FIELDS:
            for key in self:
                key._emboux_sync_key("key_update")
        return result

    def unlink(self):
        self._emboux_log("key_deleted")
        self.env["emboux.mail.webhook.event"]._emboux_emit(
            "key.revoked", self.filtered("active"), deleted=True
        )
        for key in self:
            key._emboux_sync_key("key_delete", mark=False)
        return super().unlink()

    # -- connected mode (see emboux_mail_sync_mixin) ----------------------------
    def _emboux_sync_quotas(self):
        """The upstream holds each key's quotas: send them again when a plan
        changed them (the ORM recomputes them without writing the keys)."""
        for key in self:
            key._emboux_sync_key("key_update")

    def _emboux_sync_key(self, operation, encrypted_token=None, mark=True):
        """Queue a change of this tenant's key upstream, addressed by its
        token (kept encrypted in ``upstream_token_encrypted``, decrypted
        only to call the upstream)."""
        self.ensure_one()
        encrypted_token = encrypted_token or self.sudo().upstream_token_encrypted
        if self.is_master or not self.partner_id or not encrypted_token:
            return
        values = {name: self[name] for name in QUOTA_FIELDS}
        values["active"] = self.active
        values["expires_at"] = (
            self.expires_at.isoformat(timespec="seconds") if self.expires_at else None
        )
        payload = {"partner_ref": self.partner_ref, "values": values}
        self._emboux_sync_enqueue(
            operation, payload, encrypted_token=encrypted_token, mark=mark
        )

    def _emboux_upstream_tokens(self):
        """The encrypted tokens the upstream may know for these keys: each
        one's own and, while a new token waits in the outbox behind the
        changes queued before it, the old one that the pending deletion of
        the old key still carries."""
        replaced = (
            self.env["emboux.mail.sync.event"]
            .sudo()
            .search(
                [
                    ("res_model", "=", self._name),
                    ("res_id", "in", self.ids),
                    ("operation", "=", "key_delete"),
                    ("state", "=", "pending"),
                ]
            )
        )
        tokens = self.sudo().mapped("upstream_token_encrypted") + replaced.mapped(
            "upstream_token_encrypted"
        )
        return list(dict.fromkeys(filter(None, tokens)))

    def _emboux_sync_lanes(self):
        """A key's changes are ordered with its tenant's and, while it takes
        its quotas from a plan, with that plan's other keys': a key moved
        onto a plan read the plan's latest change, and must be taken back
        with it if the upstream refuses that change."""
        lanes = {f"tenant:{self.partner_ref}"} if self.partner_ref else set()
        if self.plan_id and not self.quota_override:
            lanes.add(f"plan:{self.plan_id.id}")
        return lanes

    # -- tokens ----------------------------------------------------------------
    def _emboux_set_token(self, token):
        """Store ``token``'s hash; refuse a token another key already has."""
        self.ensure_one()
        if not isinstance(token, str) or len(token) < 16:
            raise EmbouxValidationError(
                self.env._("Token: a token needs at least 16 characters."),
                status=422,
            )
        if self._emboux_find_by_token(token) - self:
            raise EmbouxValidationError(
                self.env._("Token: another API key already has this token."),
                detail="API key already exists",
            )
        # connected: the upstream addresses a tenant's key by its token, kept
        # encrypted (refused here, before anything, without a key to do so)
        encrypted = False
        if self.partner_id and not self.is_master and self._emboux_sync_configured():
            encrypted = self._emboux_encrypt(token)
        self.env["emboux.mail.sync.undo"]._emboux_journal(
            "write", self, columns=["token_hash", "token_index"]
        )
        self.env.cr.execute(
            SQL(
                "UPDATE %s SET token_hash = %s, token_index = %s WHERE id = %s",
                SQL.identifier(self._table),
                hashing.hash_token(token),
                hashing.token_index(token),
                self.id,
            )
        )
        self.invalidate_recordset(["token_index", "token"])
        if encrypted:
            old = self.sudo().upstream_token_encrypted
            self.sudo().upstream_token_encrypted = encrypted
            if old and self._emboux_decrypt(old) != token:
                # a new token: replace the key upstream (the new one first,
                # so that a refusal leaves the old one working)
                self._emboux_sync_key("key_create", encrypted_token=encrypted)
                self._emboux_sync_key("key_delete", encrypted_token=old)

    @api.model
    def _emboux_find_by_token(self, token):
        """The key holding ``token``, active or not (sudo), or an empty set."""
        if not isinstance(token, str) or not token:
            return self.browse()
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                "SELECT id, token_hash FROM %s WHERE token_index = %s",
                SQL.identifier(self._table),
                hashing.token_index(token),
            )
        )
        for key_id, token_hash in self.env.cr.fetchall():
            if hashing.verify_token(token, token_hash):
                return self.sudo().with_context(active_test=False).browse(key_id)
        return self.browse()

    @api.model
    def _emboux_check_token(self, token):
        """The usable key for a Bearer ``token``, or an error whose
        ``detail`` is the EmBoux API's text for that failure."""
        key = self._emboux_find_by_token(token)
        if not key:
            raise EmbouxForbidden(self.env._("Invalid API key"), "Invalid API key")
        # what a request asks of its key (the audit its name), not the whole row
        key.fetch(
            ["active", "expires_at", "is_master", "partner_id", "name", "last_used_at"]
        )
        if not key.active:
            message = self.env._("API key is deactivated")
            raise EmbouxForbidden(message, "API key is deactivated")
        if key.expires_at and key.expires_at <= fields.Datetime.now():
            raise EmbouxForbidden(
                self.env._("API key has expired"), "API key has expired"
            )
        return key

    @api.model
    def _emboux_generate(self, vals):
        """Create a key with a new random token; return (key, clear token)."""
        token = hashing.generate_token()
        key = self.create({**vals, "token": token})
        return key, token

    def _emboux_api_dict(self, token=None):
        """The key as the EmBoux API shows it; the clear ``token`` only in
        the answer that creates it (webhooks never carry it)."""
        self.ensure_one()
        return {
            "id": self.id,
            "token": token,
            "partner_ref": self.partner_id.emboux_partner_ref or None,
            "domains_allowed": self.domains_allowed,
            "domains_used": self.domains_used,
            "mailboxes_per_domain": self.mailboxes_per_domain,
            "aliases_per_mailbox": self.aliases_per_mailbox,
            "active": self.active,
            "expires_at": stamp(self.expires_at),
            "created_at": stamp(self.create_date),
            "last_used_at": stamp(self.last_used_at),
        }

    def action_revoke(self):
        self.check_access("write")
        self.active = False

    def action_restore(self):
        self.check_access("write")
        self.active = True

    def _emboux_log(self, event):
        self.env["emboux.mail.security.log"]._emboux_log(event, self)
