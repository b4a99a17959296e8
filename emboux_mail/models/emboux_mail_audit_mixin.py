from odoo import api, models, tools

# the field types whose values an entry shows as they are (a many2one by its
# name); relations, JSON and binaries are left out
AUDITED_TYPES = frozenset(
    {
        "boolean",
        "char",
        "date",
        "datetime",
        "float",
        "integer",
        "many2one",
        "monetary",
        "selection",
        "text",
    }
)
# initial values recorded even when empty: 0 and False say something there
# (unlimited, not verified)
ALWAYS_SHOWN_TYPES = frozenset({"boolean", "float", "integer", "monetary"})
# a field whose name holds one of these is secret: neither its value nor its
# name ever reach the trail
SECRET_PARTS = ("password", "token", "secret", "private")
# what the rules, the API and the scheduled checks keep up to date by
# themselves: counters, stamps, the findings of DNS checks, the sync's state
BOOKKEEPING = frozenset(
    {
        "last_used_at",
        "mailbox_count",
        "dns_state",
        "dns_checked_at",
        "ses_verified",
        "verification_status",
        "verification_checked_at",
        "verification_next_at",
        "verification_attempts",
        "sync_state",
        "sync_error",
        "sync_attempts",
    }
)


def _is_secret(name):
    return any(part in name for part in SECRET_PARTS)


class EmbouxMailAuditMixin(models.AbstractModel):
    """Records every change of the hosting records in the audit trail
    (``emboux.mail.audit``): one entry per record and ORM call, inserted with
    one query per call, in the transaction of the change.

    It comes last in the records' ``_inherit``, right above the ORM: it sees
    the values as the models' own rules rewrote them, and a call those rules
    make themselves (the sync marking a record pending) is recorded only if
    it changes an audited field. The records have ``partner_id`` (the
    tenant) and ``company_id``."""

    _name = "emboux.mail.audit.mixin"
    _description = "Audited hosting record"

    @api.model
    @tools.ormcache()
    def _emboux_audited_fields(self):
        """The fields whose values the trail keeps: stored values someone
        sets (not computed from other fields, not bookkeeping), readable by
        every reader of the trail, and not secret."""
        return frozenset(
            name
            for name, field in self._fields.items()
            if field.store
            and field.type in AUDITED_TYPES
            and not field.automatic
            and not field.groups
            and not (field.compute and field.readonly)
            and name not in BOOKKEEPING
            and not _is_secret(name)
        )

    @api.model
    @tools.ormcache()
    def _emboux_secret_fields(self):
        """The write-only fields that set a secret (a password, a token): the
        trail says that one was set, never its value nor its name."""
        return frozenset(
            name
            for name, field in self._fields.items()
            if not field.store and field.inverse and _is_secret(name)
        )

    def _emboux_audit_snapshot(self, names):
        """``{id: {field: value}}``, values as the trail stores them (JSON),
        read for the whole recordset at once."""
        snapshot = {}
        for record in self.sudo():
            values = snapshot[record.id] = {}
            for name in names:
                field, value = self._fields[name], record[name]
                if field.type == "many2one":
                    value = value.display_name or False
                elif field.type in ("date", "datetime"):
                    value = field.to_string(value)
                values[name] = value
        return snapshot

    @api.model
    def _emboux_audit_secrets_set(self, vals):
        return any(vals.get(name) for name in self._emboux_secret_fields())

    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        records._emboux_audit_created(
            [
                record.id
                for record, vals in zip(records, vals_list, strict=True)
                if self._emboux_audit_secrets_set(vals)
            ]
        )
        return records

    def _emboux_audit_created(self, secrets=()):
        """One entry per record, with its initial values (``secrets``: the
        ids of the records created with a password or token)."""
        snapshot = self._emboux_audit_snapshot(self._emboux_audited_fields())
        changes = {
            record_id: {
                name: {"new": value}
                for name, value in values.items()
                if value or self._fields[name].type in ALWAYS_SHOWN_TYPES
            }
            for record_id, values in snapshot.items()
        }
        Audit = self.env["emboux.mail.audit"]
        Audit._emboux_insert(Audit._emboux_entries("create", self, changes, secrets))

    def write(self, vals):
        names = self._emboux_audited_fields().intersection(vals)
        secret = self._emboux_audit_secrets_set(vals)
        if not self or not (names or secret):
            return super().write(vals)
        before = self._emboux_audit_snapshot(names)
        result = super().write(vals)
        self._emboux_audit_written(before, secret)
        return result

    def _emboux_audit_written(self, before, secret=False):
        """One entry per record whose fields of ``before`` (a snapshot
        taken before the change) changed, or whose password or token was
        set (``secret``)."""
        names = next(iter(before.values()), {}).keys()
        changes = {
            record_id: {
                name: {"old": before[record_id][name], "new": value}
                for name, value in values.items()
                if value != before[record_id][name]
            }
            for record_id, values in self._emboux_audit_snapshot(names).items()
        }
        changed = self if secret else self.filtered(lambda r: changes[r.id])
        if changed:
            Audit = self.env["emboux.mail.audit"]
            Audit._emboux_insert(
                Audit._emboux_entries(
                    "write", changed, changes, changed.ids if secret else ()
                )
            )

    def unlink(self):
        """The entries are made before (the records' names and tenants are
        gone after) and inserted once the records are."""
        Audit = self.env["emboux.mail.audit"]
        entries = Audit._emboux_entries("unlink", self)
        result = super().unlink()
        Audit._emboux_insert(entries)
        return result
