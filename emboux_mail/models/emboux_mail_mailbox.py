from odoo import api, fields, models
from odoo.tools import SQL, create_index

from ..exceptions import (
    EmbouxNotFound,
    EmbouxQuotaError,
    EmbouxUserError,
    EmbouxValidationError,
)
from ..services import hashing, names, passwords


class EmbouxMailMailbox(models.Model):
    """A mailbox (``/users/`` in the EmBoux API).

    The password is write-only: assigning ``password`` stores a Dovecot
    ``{SHA512-CRYPT}`` hash in the column ``password_hash`` (created in
    ``init``, not an ORM field, so no read returns it) when this database is
    the mail backend; with an upstream API configured nothing is stored here,
    the upstream keeps the hash.
    """

    _name = "emboux.mail.mailbox"
    _description = "Mailbox"
    _inherit = [
        "mail.thread",
        "mail.activity.mixin",
        "emboux.mail.mixin",
        "emboux.mail.sync.mixin",
    ]
    _order = "create_date desc, id desc"
    _rec_name = "email"

    email = fields.Char(required=True, tracking=True)
    domain_id = fields.Many2one(
        "emboux.mail.domain",
        string="Domain",
        required=True,
        index=True,
        ondelete="cascade",
    )
    partner_id = fields.Many2one(
        related="domain_id.partner_id", store=True, index=True, string="Customer"
    )
    company_id = fields.Many2one(related="domain_id.company_id", store=True)
    suspended = fields.Boolean(related="domain_id.suspended")
    quota_mb = fields.Integer(string="Storage Quota (MB)", tracking=True)
    password = fields.Char(
        compute="_compute_password",
        inverse="_inverse_password",
        copy=False,
        help="Write-only: hashed when set, never shown again.",
    )

    _sql_constraints = [
        ("email_uniq", "unique(email)", "This mailbox already exists."),
        ("quota_positive", "CHECK(quota_mb >= 0)", "A quota cannot be negative."),
    ]

    def init(self):
        self.env.cr.execute(
            SQL(
                "ALTER TABLE %s ADD COLUMN IF NOT EXISTS password_hash varchar",
                SQL.identifier(self._table),
            )
        )
        # lists are newest first, per tenant or per domain, a page at a time:
        # an index in that order serves a page without sorting every row
        for column in ("partner_id", "domain_id"):
            create_index(
                self.env.cr,
                f"{self._table}_{column}_newest_idx",
                self._table,
                [column, "create_date DESC", "id DESC"],
            )

    def _compute_password(self):
        self.password = False

    def _inverse_password(self):
        for mailbox in self.filtered("password"):
            mailbox._emboux_set_password(mailbox.password)

    # -- CRUD ------------------------------------------------------------------
    @api.model_create_multi
    def create(self, vals_list):
        Domain = self.env["emboux.mail.domain"]
        for vals in vals_list:
            email = vals.get("email")
            vals["email"] = self._emboux_normalize("email", email, self.env._("Email"))
            domain = self._emboux_domain_for(vals["email"], vals.get("domain_id"))
            vals["domain_id"] = domain.id
            if "quota_mb" not in vals:
                plan = domain.partner_id.emboux_plan_id
                vals["quota_mb"] = (
                    plan.quota_mb
                    if plan
                    else self.env["emboux.mail.plan"]._default_quotas()["quota_mb"]
                )
        self._emboux_check_unique("email", [vals["email"] for vals in vals_list])
        domains = Domain.browse([vals["domain_id"] for vals in vals_list])
        domains._emboux_check_active()
        counts = self._emboux_lock_domains(domains)
        for domain in domains:
            self._emboux_check_mailbox_quota(
                domain, counts[domain.id], domains.ids.count(domain.id)
            )
        duplicate = self._emboux_duplicate_error(vals_list[0]["email"])
        mailboxes = self._emboux_insert(
            super(
                EmbouxMailMailbox, self.with_context(emboux_sync_creating=True)
            ).create,
            vals_list,
            duplicate,
        ).with_env(self.env)
        self._emboux_lock_domains(domains)
        mailboxes._emboux_sync_created(vals_list)
        return mailboxes

    def write(self, vals):
        for mailbox in self:
            moved = vals.get("domain_id", mailbox.domain_id.id) != mailbox.domain_id.id
            if moved or vals.get("email", mailbox.email) != mailbox.email:
                raise EmbouxUserError(
                    self.env._(
                        "Mailbox: the address and the domain of a mailbox cannot "
                        "change; create a new mailbox instead."
                    )
                )
        before = {mailbox.id: mailbox.quota_mb for mailbox in self}
        result = super().write(vals)
        if "quota_mb" in vals:
            for mailbox in self.filtered(lambda m: m.quota_mb != before[m.id]):
                mailbox._emboux_sync_enqueue(
                    "mailbox_quota",
                    {
                        "email": mailbox.email,
                        "quota_mb": mailbox.quota_mb,
                        "previous_quota_mb": before[mailbox.id],
                    },
                )
        return result

    def unlink(self):
        domains = self.domain_id
        if not self.env.context.get("emboux_cascade"):
            for mailbox in self:
                mailbox._emboux_sync_enqueue(
                    "mailbox_delete", {"email": mailbox.email}, mark=False
                )
        result = super().unlink()
        self._emboux_lock_domains(domains.exists())
        return result

    # -- rules -----------------------------------------------------------------
    def _emboux_set_quota(self, quota_mb, by):
        """Set the storage quota; a customer (``by``) only within 1 MB and
        its plan's maximum mailbox size: unlimited (0) and more are the
        operator's to grant."""
        if by == "customer":
            for mailbox in self:
                ceiling = mailbox.partner_id._emboux_max_quota_mb()
                if not 0 < quota_mb <= ceiling:
                    raise EmbouxQuotaError(
                        self.env._(
                            "Storage quota: %(value)s MB is not allowed; your plan "
                            "allows 1 to %(ceiling)s MB per mailbox.",
                            value=quota_mb,
                            ceiling=ceiling,
                        ),
                        f"Storage quota exceeds plan maximum ({ceiling} MB)",
                    )
        self.write({"quota_mb": quota_mb})

    @api.model
    def _emboux_domain_for(self, email, domain_id=None):
        """The domain an address lives in: the one given, which must match the
        address, or the one named by the address."""
        Domain = self.env["emboux.mail.domain"]
        domain_name = names.domain_of(email)
        if not domain_id:
            domain = Domain.search([("name", "=", domain_name)], limit=1)
            if not domain:
                raise EmbouxNotFound(
                    self.env._("Domain: %(value)r does not exist.", value=domain_name),
                    detail="Domain not found",
                )
            return domain
        domain = Domain.browse(domain_id)
        if domain.name != domain_name:
            raise EmbouxValidationError(
                self.env._(
                    "Email: %(value)r is not an address of the domain %(domain)s.",
                    value=email,
                    domain=domain.name,
                ),
                detail="Email does not belong to domain",
            )
        return domain

    def _emboux_duplicate_error(self, email):
        return EmbouxValidationError(
            self.env._("Email: the mailbox %(value)r already exists.", value=email),
            detail="Email already exists",
        )

    @api.model
    def _emboux_check_mailbox_quota(self, domain, used, adding=1):
        allowed = domain.partner_id._emboux_limits()["mailboxes_per_domain"]
        if allowed and used + adding > allowed:
            raise EmbouxQuotaError(
                self.env._(
                    "Domain %(domain)s: mailbox quota exceeded (%(used)s of "
                    "%(allowed)s mailboxes used).",
                    domain=domain.name,
                    used=used,
                    allowed=allowed,
                ),
                detail="Mailbox quota exceeded for this domain",
            )

    @api.model
    def _emboux_password_min_length(self):
        params = self.env["ir.config_parameter"].sudo()
        value = params.get_param("emboux_mail.password_min_length")
        return int(value) if value and value.isdigit() else passwords.MIN_LENGTH

    def _emboux_check_password_policy(self, password):
        """The one password policy (``services.passwords``), for the REST
        API, the portal, the wizard and imports alike (422 at ``password``)."""
        self.ensure_one()
        minimum = self._emboux_password_min_length()
        try:
            passwords.check(password, minimum, name=self.email.partition("@")[0])
        except passwords.PasswordRejected as error:
            messages = {
                "empty": self.env._("Password: type a password."),
                "not_utf8": self.env._("Password: it is not valid text."),
                "too_long": self.env._(
                    "Password: use at most %(maximum)s bytes.",
                    maximum=passwords.MAX_BYTES,
                ),
                "control": self.env._(
                    "Password: it cannot contain control characters (tabs, line "
                    "breaks)."
                ),
                "too_short": self.env._(
                    "Password: use at least %(minimum)s characters.", minimum=minimum
                ),
                "contains_name": self.env._(
                    "Password: it must not contain the mailbox's name."
                ),
            }
            raise EmbouxValidationError(
                messages[error.code], status=422, field="password"
            ) from error

    @api.model
    def _emboux_generate_password(self):
        """A random password that the policy accepts."""
        return hashing.generate_password(max(16, self._emboux_password_min_length()))

    def _emboux_set_password(self, password):
        """Hash and store ``password`` when this database is the backend."""
        self.ensure_one()
        self.domain_id._emboux_check_active()
        self._emboux_check_password_policy(password)
        stored = None
        if not self._emboux_upstream_configured():
            stored = hashing.hash_mailbox_password(password)
        elif not self.env.context.get("emboux_sync_creating"):
            # connected: sent upstream from memory, never stored here
            self._emboux_sync_enqueue(
                "mailbox_password", {"email": self.email}, secret=password
            )
        self.env.cr.execute(
            SQL(
                "UPDATE %s SET password_hash = %s WHERE id = %s",
                SQL.identifier(self._table),
                stored,
                self.id,
            )
        )
        self.invalidate_recordset(["password"])

    def _emboux_check_password(self, password):
        """True when ``password`` matches the stored hash (standalone mode)."""
        self.ensure_one()
        self.env.cr.execute(
            SQL(
                "SELECT password_hash FROM %s WHERE id = %s",
                SQL.identifier(self._table),
                self.id,
            )
        )
        row = self.env.cr.fetchone()
        return hashing.verify_mailbox_password(password, row and row[0])

    # -- connected mode (see emboux_mail_sync_mixin) ----------------------------
    def _emboux_sync_created(self, vals_list):
        """Queue the upstream creation with the password given (kept in
        memory only); the upstream needs one, so a random one is used when
        none was given (set the real one later)."""
        for mailbox, vals in zip(self, vals_list, strict=True):
            password = vals.get("password") or hashing.generate_token()
            mailbox._emboux_sync_enqueue(
                "mailbox_create",
                {
                    "domain_name": mailbox.domain_id.name,
                    "email": mailbox.email,
                    "partner_ref": mailbox.domain_id.partner_ref or None,
                },
                secret=password,
            )

    def _emboux_sync_lanes(self):
        return self.domain_id._emboux_sync_lanes()
