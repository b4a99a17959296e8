from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL, Query, create_index

from ..exceptions import (
    EmbouxNotFound,
    EmbouxQuotaError,
    EmbouxUserError,
    EmbouxValidationError,
)
from ..services import hashing, names, passwords
from ..services.stamps import stamp
from .emboux_mail_domain import MEBIBYTE

# What the mail server reports of each mailbox (Dovecot's quota_clone, see
# emboux_mail_api's mail server): kept apart from the mailbox rows, so that a
# delivery never waits for a transaction holding a mailbox, and Odoo never
# rewrites what Dovecot counts.
USAGE_TABLE = "emboux_mail_mailbox_usage"
# crossings of a warning level, queued by the usage table's trigger for the
# scheduled action that tells the customer
WARNING_TABLE = "emboux_mail_mailbox_usage_warning"
# the shares of its quota at which a mailbox's owner is warned, highest first
WARNING_LEVELS = (95, 80)
COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
USAGE_SQL = f"""
CREATE TABLE IF NOT EXISTS {USAGE_TABLE} (
    email varchar PRIMARY KEY,
    bytes bigint NOT NULL DEFAULT 0,
    messages bigint NOT NULL DEFAULT 0,
    warned_level smallint NOT NULL DEFAULT 0,
    updated_at timestamp
);
CREATE TABLE IF NOT EXISTS {WARNING_TABLE} (
    id serial PRIMARY KEY,
    email varchar NOT NULL,
    created_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);
-- the level a write reaches; a level higher than the last one is a
-- crossing, queued once; a lower one re-arms the warning
CREATE OR REPLACE FUNCTION {USAGE_TABLE}_level() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
AS $fn$
DECLARE
    quota integer;
    level smallint := 0;
    previous smallint := 0;
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- an INSERT ... ON CONFLICT meeting the row goes on as an UPDATE,
        -- whose trigger decides
        PERFORM 1 FROM {USAGE_TABLE} WHERE email = NEW.email;
        IF FOUND THEN
            RETURN NEW;
        END IF;
    ELSE
        previous := OLD.warned_level;
    END IF;
    NEW.updated_at := now() AT TIME ZONE 'UTC';
    SELECT quota_mb INTO quota FROM emboux_mail_mailbox WHERE email = NEW.email;
    IF quota > 0 THEN
        level := CASE
            WHEN NEW.bytes * 100 >= quota::bigint * {MEBIBYTE} * {WARNING_LEVELS[0]}
                THEN {WARNING_LEVELS[0]}
            WHEN NEW.bytes * 100 >= quota::bigint * {MEBIBYTE} * {WARNING_LEVELS[1]}
                THEN {WARNING_LEVELS[1]}
            ELSE 0 END;
    END IF;
    IF level > previous THEN
        INSERT INTO {WARNING_TABLE} (email) VALUES (NEW.email);
    END IF;
    NEW.warned_level := level;
    RETURN NEW;
END
$fn$;
DROP TRIGGER IF EXISTS {USAGE_TABLE}_level ON {USAGE_TABLE};
CREATE TRIGGER {USAGE_TABLE}_level BEFORE INSERT OR UPDATE OF bytes
    ON {USAGE_TABLE} FOR EACH ROW EXECUTE FUNCTION {USAGE_TABLE}_level();
"""


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
        "emboux.mail.audit.mixin",
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
        related="domain_id.partner_id",
        store=True,
        index=True,
        precompute=True,
        string="Customer",
    )
    company_id = fields.Many2one(
        related="domain_id.company_id", store=True, precompute=True
    )
    suspended = fields.Boolean(related="domain_id.suspended")
    quota_mb = fields.Integer(string="Storage Quota (MB)", tracking=True)
    used_mb = fields.Float(
        string="Used (MB)",
        compute="_compute_usage",
        search="_search_used_mb",
        digits=(16, 2),
        help="The storage the mailbox uses, as the mail server last reported it.",
    )
    used_messages = fields.Integer(
        string="Messages Stored",
        compute="_compute_usage",
        search="_search_used_messages",
    )
    used_percent = fields.Float(
        string="Storage Used (%)",
        compute="_compute_usage",
        search="_search_used_percent",
        digits=(16, 1),
        help="The share of its quota the mailbox uses; 0 when unlimited.",
    )
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
        self.env.cr.execute(SQL(USAGE_SQL))
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

    # -- storage used ----------------------------------------------------------
    def _compute_usage(self):
        """One query for the whole recordset, however many mailboxes."""
        self.env.cr.execute(
            SQL(
                "SELECT email, bytes, messages FROM %s WHERE email = ANY(%s)",
                SQL.identifier(USAGE_TABLE),
                [email for email in self.mapped("email") if email],
            )
        )
        found = {email: (used, count) for email, used, count in self.env.cr.fetchall()}
        for mailbox in self:
            used, count = found.get(mailbox.email, (0, 0))
            mailbox.used_mb = used / MEBIBYTE
            mailbox.used_messages = count
            mailbox.used_percent = (
                used * 100 / (mailbox.quota_mb * MEBIBYTE) if mailbox.quota_mb else 0
            )

    def _field_to_sql(self, alias, fname, query=None, flush=True):
        """The usage as SQL, so that lists sort and filter by it."""
        if fname not in ("used_mb", "used_messages", "used_percent"):
            return super()._field_to_sql(alias, fname, query, flush)
        email = super()._field_to_sql(alias, "email", query, flush)
        column = "messages" if fname == "used_messages" else "bytes"
        used = SQL(
            "COALESCE((SELECT u.%s FROM %s u WHERE u.email = %s), 0)",
            SQL.identifier(column),
            SQL.identifier(USAGE_TABLE),
            email,
        )
        if fname == "used_mb":
            return SQL("(%s / %s::float)", used, MEBIBYTE)
        if fname == "used_percent":
            quota = super()._field_to_sql(alias, "quota_mb", query, flush)
            return SQL(
                "(CASE WHEN %s > 0 THEN %s * 100.0 / (%s * %s::float) ELSE 0 END)",
                quota,
                used,
                quota,
                MEBIBYTE,
            )
        return used

    def _emboux_usage_level_again(self):
        """Weigh the use against a new quota now, not at the next delivery:
        a quota lowered under the use warns, a raised one re-arms."""
        self.flush_recordset(["quota_mb"])
        self.env.cr.execute(
            SQL(
                "UPDATE %s SET bytes = bytes WHERE email = ANY(%s)",
                SQL.identifier(USAGE_TABLE),
                self.mapped("email"),
            )
        )

    def _search_used_mb(self, operator, value):
        return self._emboux_search_sql(self, "used_mb", operator, value)

    def _search_used_messages(self, operator, value):
        return self._emboux_search_sql(self, "used_messages", operator, value)

    def _search_used_percent(self, operator, value):
        return self._emboux_search_sql(self, "used_percent", operator, value)

    @api.model
    def _emboux_search_sql(self, model, fname, operator, value):
        """A domain comparing ``model``'s storage field ``fname`` with a
        number, in SQL (see the models' ``_field_to_sql``)."""
        if operator not in COMPARISONS or not isinstance(value, int | float):
            raise UserError(
                self.env._("Storage use can only be compared with a number.")
            )
        query = Query(model.env, model._table, model._table_sql)
        query.add_where(
            SQL(
                "%s %s %s",
                model._field_to_sql(model._table, fname, query),
                SQL(operator),
                value,
            )
        )
        return [("id", "in", query)]

    @api.model
    def _emboux_total_sql(self, alias, column):
        """The bytes used by the mailboxes whose ``column`` (``domain_id``,
        ``partner_id``) is the row ``alias``, in MB, as SQL."""
        return SQL(
            "(COALESCE((SELECT sum(u.bytes) FROM %s m JOIN %s u ON u.email = m.email"
            " WHERE m.%s = %s), 0) / %s::float)",
            SQL.identifier(self._table),
            SQL.identifier(USAGE_TABLE),
            SQL.identifier(column),
            SQL.identifier(alias, "id"),
            MEBIBYTE,
        )

    @api.model
    def _emboux_used_bytes(self, column, ids):
        """``{id: bytes}``: what the mailboxes of each ``column`` value in
        ``ids`` use; one query."""
        self.env.cr.execute(
            SQL(
                "SELECT m.%s, sum(u.bytes) FROM %s m JOIN %s u ON u.email = m.email"
                " WHERE m.%s = ANY(%s) GROUP BY m.%s",
                SQL.identifier(column),
                SQL.identifier(self._table),
                SQL.identifier(USAGE_TABLE),
                SQL.identifier(column),
                [id_ for id_ in ids if isinstance(id_, int)],
                SQL.identifier(column),
            )
        )
        return dict(self.env.cr.fetchall())

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
                # the owner's plan applies whoever creates; and read alone: a
                # customer's full record is dozens of columns
                owner = domain.partner_id.sudo().with_context(prefetch_fields=False)
                plan = owner.emboux_plan_id
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
        self.env["emboux.mail.webhook.event"]._emboux_emit("mailbox.created", mailboxes)
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
            self._emboux_usage_level_again()
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
        self.env["emboux.mail.webhook.event"]._emboux_emit("mailbox.deleted", self)
        if not self.env.context.get("emboux_cascade"):
            for mailbox in self:
                mailbox._emboux_sync_enqueue(
                    "mailbox_delete", {"email": mailbox.email}, mark=False
                )
        emails = self.mapped("email")
        result = super().unlink()
        self._emboux_lock_domains(domains.exists())
        self.env.cr.execute(
            SQL(
                "DELETE FROM %s WHERE email = ANY(%s)",
                SQL.identifier(USAGE_TABLE),
                emails,
            )
        )
        return result

    @api.model
    def _cron_usage_warnings(self, batch=500):
        """Tell customers which of their mailboxes crossed 80% or 95% of
        their quota since the last run: a message posted on the mailbox and
        e-mailed to its owner."""
        self.env.cr.execute(
            SQL(
                "DELETE FROM %(table)s WHERE id IN (SELECT id FROM %(table)s"
                " ORDER BY id LIMIT %(batch)s FOR UPDATE SKIP LOCKED)"
                " RETURNING email",
                table=SQL.identifier(WARNING_TABLE),
                batch=batch,
            )
        )
        # one message per mailbox and run: crossings of both levels, or one
        # queued twice (two first deliveries at once), between two runs are
        # told once, with the use as it is now
        crossings = self.env.cr.fetchall()
        emails = {email for (email,) in crossings}
        template = self.env.ref("emboux_mail.mail_template_mailbox_usage_warning")
        for mailbox in self.search([("email", "in", list(emails))]):
            if mailbox.partner_id:
                mailbox.message_post_with_source(
                    template,
                    message_type="comment",
                    subtype_xmlid="mail.mt_comment",
                )
                self.env["emboux.mail.webhook.event"]._emboux_emit(
                    "mailbox.quota_near_full",
                    mailbox,
                    used_mb=round(mailbox.used_mb, 2),
                    used_percent=round(mailbox.used_percent, 1),
                )
        if len(crossings) >= batch:
            self.env.ref("emboux_mail.ir_cron_mailbox_usage_warnings")._trigger()

    def _emboux_api_dict(self):
        """The mailbox as the EmBoux API and the webhooks show it."""
        self.ensure_one()
        return {
            "id": self.id,
            "domain_id": self.domain_id.id,
            "email": self.email,
            "quota_mb": self.quota_mb,
            "created_at": stamp(self.create_date),
        }

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
        if not self.env.context.get("emboux_sync_creating"):
            self.env["emboux.mail.webhook.event"]._emboux_emit(
                "mailbox.password_changed", self
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
        if not self._emboux_sync_journaled():
            return  # no payload to build when nothing would send it
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
