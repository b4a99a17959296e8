import psycopg2

from odoo import api, models

from ..exceptions import EmbouxValidationError
from ..services import names


class EmbouxMailMixin(models.AbstractModel):
    """Rules shared by domains, mailboxes and aliases.

    Quotas are checked under a row lock taken by an UPDATE of the counter row
    (the tenant's partner, or the domain) in the same transaction as the
    insert. Odoo runs transactions in REPEATABLE READ: a plain ``SELECT ...
    FOR UPDATE`` would wait for a concurrent insert but then count from a
    stale snapshot. Updating the row instead makes PostgreSQL raise a
    serialization failure when another transaction changed it meanwhile, and
    Odoo replays the request with a fresh snapshot, so the count is right.
    """

    _name = "emboux.mail.mixin"
    _description = "Mail hosting rules"

    @api.model
    def _emboux_upstream_configured(self):
        """True in the connected topology (an upstream EmBoux API is set)."""
        params = self.env["ir.config_parameter"].sudo()
        return bool(params.get_param("emboux_mail.upstream_url"))

    def _emboux_invalid_name_message(self, error, label):
        reasons = {
            "not_text": self.env._("it is not text"),
            "empty": self.env._("it is empty"),
            "idna": self.env._("it cannot be encoded as an international name"),
            "one_label": self.env._("a domain needs at least two labels"),
            "too_long": self.env._("it is longer than 253 characters"),
            "bad_label": self.env._(
                "each label must be 1 to 63 letters, digits or inner hyphens"
            ),
            "numeric_tld": self.env._("the top-level label cannot be numeric"),
            "no_at": self.env._("an address needs a local part and @domain"),
            "bad_local": self.env._("the part before @ has invalid characters"),
        }
        return self.env._(
            "%(field)s: %(value)r is not valid: %(reason)s.",
            field=label,
            value=error.value,
            reason=reasons.get(error.code, error.code),
        )

    @api.model
    def _emboux_normalize(self, kind, value, label):
        """Normalise a name with ``services.names``; raise a ValidationError
        (API status 422) naming the field and the value when it is invalid."""
        normalize = {
            "domain": names.normalize_domain,
            "email": names.normalize_email,
            "alias_source": names.normalize_alias_source,
        }[kind]
        try:
            return normalize(value)
        except names.InvalidName as error:
            message = self._emboux_invalid_name_message(error, label)
            raise EmbouxValidationError(message, status=422) from error

    @api.model
    def _emboux_lock_tenants(self, partners):
        """Lock the tenants' rows and bring their domain counters up to date.

        Returns ``{partner_id: domain_count}``. Rows are locked in id order so
        that two transactions moving domains between the same tenants cannot
        deadlock.
        """
        ids = sorted(set(partners.ids))
        if not ids:
            return {}
        self.env.flush_all()
        self.env.cr.execute(
            """
            UPDATE res_partner p
               SET emboux_domain_count = (
                   SELECT count(*) FROM emboux_mail_domain d
                    WHERE d.partner_id = p.id)
             WHERE p.id IN (
                   SELECT id FROM res_partner WHERE id IN %s ORDER BY id FOR UPDATE)
         RETURNING p.id, p.emboux_domain_count
            """,
            [tuple(ids)],
        )
        counts = dict(self.env.cr.fetchall())
        # the UPDATE bypassed the ORM: drop the cached counter and what
        # derives from it (the keys' domains_used)
        partners = self.env["res.partner"].browse(ids)
        partners.invalidate_recordset(["emboux_domain_count"])
        partners.modified(["emboux_domain_count"])
        return counts

    def _emboux_counted_in(self):
        """The domains and tenants whose counters count these records."""
        domains = self if self._name == "emboux.mail.domain" else self.domain_id
        return domains, domains.partner_id

    @api.model
    def _emboux_lock_domains(self, domains):
        """Lock the domains' rows and bring their mailbox counters up to date.

        Returns ``{domain_id: mailbox_count}`` (see the class docstring)."""
        ids = sorted(set(domains.ids))
        if not ids:
            return {}
        self.env.flush_all()
        self.env.cr.execute(
            """
            UPDATE emboux_mail_domain d
               SET mailbox_count = (
                   SELECT count(*) FROM emboux_mail_mailbox m
                    WHERE m.domain_id = d.id)
             WHERE d.id IN (
                   SELECT id FROM emboux_mail_domain
                    WHERE id IN %s ORDER BY id FOR UPDATE)
         RETURNING d.id, d.mailbox_count
            """,
            [tuple(ids)],
        )
        counts = dict(self.env.cr.fetchall())
        domains = self.env["emboux.mail.domain"].browse(ids)
        domains.invalidate_recordset(["mailbox_count"])
        domains.modified(["mailbox_count"])
        return counts

    @api.model
    def _emboux_check_unique(self, field, values):
        """Refuse values already stored in ``field`` or repeated in ``values``
        with the model's ``_emboux_duplicate_error``."""
        records = self.sudo().with_context(active_test=False)
        existing = set(records.search([(field, "in", values)]).mapped(field))
        seen = set()
        for value in values:
            if value in existing or value in seen:
                raise self._emboux_duplicate_error(value)
            seen.add(value)

    @api.model
    def _emboux_insert(self, create, vals_list, duplicate_error):
        """Run the ORM's ``create`` in a savepoint, so that a concurrent insert
        of the same unique name ends as ``duplicate_error`` (the rule's own
        message) rather than as an SQL error."""
        try:
            with self.env.cr.savepoint():
                return create(vals_list)
        except psycopg2.errors.UniqueViolation as error:
            raise duplicate_error from error
