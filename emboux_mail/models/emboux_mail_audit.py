from datetime import timedelta

from odoo import api, fields, models
from odoo.http import request
from odoo.tools import SQL

from .emboux_mail_security_log import API_KEY_CONTEXT

CHANNELS = [
    ("backend", "Backend"),
    ("portal", "Portal"),
    ("api", "REST API"),
    ("cron", "Scheduled action"),
]
# what names the server's own master token (EMBOUX_API_KEY), which is no record
MASTER_KEY_REF = "EMBOUX_API_KEY"
RETENTION_PARAM = "emboux_mail.audit_retention_days"
RETENTION_DEFAULT = 365


class EmbouxMailAudit(models.Model):
    """One change of a hosting record: who, when, from where, what.

    Written with ``sudo`` by ``emboux.mail.audit.mixin`` in the transaction
    of the change itself (a change rolled back leaves no entry), read by
    operators and, for their own tenant, by customers in the portal."""

    _name = "emboux.mail.audit"
    _description = "Mail Hosting Audit Entry"
    _order = "id desc"
    _rec_name = "name"

    date = fields.Datetime(
        readonly=True, required=True, index=True, default=fields.Datetime.now
    )
    action = fields.Selection(
        [("create", "Created"), ("write", "Changed"), ("unlink", "Deleted")],
        required=True,
        readonly=True,
    )
    res_model_id = fields.Many2one(
        "ir.model", string="Object Type", readonly=True, ondelete="cascade"
    )
    res_model = fields.Char(string="Model", readonly=True, index=True)
    res_id = fields.Many2oneReference(
        string="Record ID", model_field="res_model", readonly=True, index=True
    )
    name = fields.Char(
        string="Record", readonly=True, help="The record's name at that time."
    )
    changes = fields.Json(
        string="Changes (Data)",
        readonly=True,
        help="Per field, the value before (changes only) and after: never a "
        "password, a token or another secret.",
    )
    changes_display = fields.Text(string="Changes", compute="_compute_changes_display")
    secret_changed = fields.Boolean(
        string="Secret Set",
        readonly=True,
        help="A password or a token was set; its value is never recorded.",
    )
    user_id = fields.Many2one("res.users", string="User", readonly=True, index=True)
    api_key_id = fields.Many2one(
        "emboux.mail.api.key",
        string="Through API Key",
        readonly=True,
        index="btree_not_null",
        ondelete="set null",
    )
    api_key_ref = fields.Char(
        string="API Key",
        readonly=True,
        help="The key's name and id, kept when the key is deleted; "
        "EMBOUX_API_KEY for the server's master token.",
    )
    channel = fields.Selection(CHANNELS, readonly=True)
    by_customer = fields.Boolean(
        readonly=True,
        help="Made by the customer itself: in the portal, or with one of its "
        "own API keys. The portal names only the customer's own actors.",
    )
    address = fields.Char(string="IP Address", readonly=True)
    partner_id = fields.Many2one(
        "res.partner", string="Customer", readonly=True, index=True
    )
    company_id = fields.Many2one(
        "res.company", readonly=True, default=lambda self: self.env.company
    )

    @api.depends("changes", "res_model")
    def _compute_changes_display(self):
        for entry in self:
            model = self.env.get(entry.res_model)
            entry.changes_display = "\n".join(
                entry._emboux_change_line(model, name, change)
                for name, change in (entry.changes or {}).items()
            )

    def _emboux_change_line(self, model, name, change):
        """``Label: before → after`` (``Label: value`` for a creation), with
        the labels of the field and of selection values when it still exists."""
        field = model._fields.get(name) if model is not None else None
        label = field._description_string(self.env) if field else name
        values = [
            self._emboux_change_value(field, change[key])
            for key in ("old", "new")
            if key in change
        ]
        return f"{label}: {' → '.join(values)}"

    def _emboux_change_value(self, field, value):
        if field and field.type == "boolean":
            return self.env._("Yes") if value else self.env._("No")
        if value is False or value is None or value == "":
            return "—"
        if field and field.type == "selection":
            return dict(field._description_selection(self.env)).get(value, value)
        return str(value)

    # -- who is acting ---------------------------------------------------------
    @api.model
    def _emboux_actor(self):
        """Who changes something now and through which door: the REST API
        puts the key it authenticated in the context (0 for the server's
        master token), a request is the portal or the backend, no request a
        scheduled action. One answer for the audit and the security log."""
        key_id = self.env.context.get(API_KEY_CONTEXT)
        if key_id is not None:
            channel = "api"
        elif not request:
            channel = "cron"
        else:
            channel = "portal" if self.env.user._is_portal() else "backend"
        return {
            "user_id": self.env.uid,
            "api_key_id": key_id or False,
            "channel": channel,
            "address": request.httprequest.remote_addr if request else False,
        }

    @api.model
    def _emboux_key_values(self, key_id):
        """The key named in an entry, readable once the key is deleted (its
        name and id, nothing of its token), and whether it is a customer's;
        the key was just authenticated: its row is already in the cache."""
        if not key_id:
            return {"api_key_ref": MASTER_KEY_REF, "by_customer": False}
        key = self.env["emboux.mail.api.key"].sudo().browse(key_id)
        return {
            "api_key_ref": f"{key.display_name} (#{key.id})",
            "by_customer": not key.is_master,
        }

    @api.model
    def _emboux_entries(self, action, records, changes=None, secrets=()):
        """The values of one entry per record of ``records``, to insert in
        one query. ``changes``: ``{record id: {field: {"old": value, "new":
        value}}}``; ``secrets``: the ids of the records whose password or
        token was set."""
        actor = self._emboux_actor()
        if actor["channel"] == "api":
            actor.update(self._emboux_key_values(actor["api_key_id"]))
        else:
            actor["by_customer"] = actor["channel"] == "portal"
        changes = changes or {}
        IrModel = self.env["ir.model"]
        return [
            {
                **actor,
                "action": action,
                "res_model": record._name,
                "res_model_id": IrModel._get_id(record._name),
                "res_id": record.id,
                "name": record.display_name,
                "changes": changes.get(record.id) or False,
                "secret_changed": record.id in secrets,
                "partner_id": record.partner_id.id,
                "company_id": record.company_id.id or self.env.company.id,
            }
            for record in records.sudo()
        ]

    @api.model
    def _emboux_insert(self, entries):
        """Insert ``entries`` (see ``_emboux_entries``) in one query, with
        the values the superuser's ``create`` would store: the trail is
        written at every change of every hosting record, and the ORM's create
        would cost that change more than the rest of its auditing. Nothing
        computes from the entries, so nothing in the cache goes stale."""
        if not entries:
            return
        now = self.env.cr.now()
        stamps = {
            "date": now,
            "create_uid": self.env.uid,
            "create_date": now,
            "write_uid": self.env.uid,
            "write_date": now,
        }
        names = [*stamps, *entries[0]]
        rows = [
            SQL(
                "(%s)",
                SQL(", ").join(
                    self._fields[name].convert_to_column_insert(value, self)
                    for name, value in {**stamps, **entry}.items()
                ),
            )
            for entry in entries
        ]
        self.env.cr.execute(
            SQL(
                "INSERT INTO %s (%s) VALUES %s",
                SQL.identifier(self._table),
                SQL(", ").join(map(SQL.identifier, names)),
                SQL(", ").join(rows),
            )
        )

    # -- retention ---------------------------------------------------------------
    @api.model
    def _emboux_retention_days(self):
        value = self.env["ir.config_parameter"].sudo().get_param(RETENTION_PARAM)
        try:
            return max(0, int(value)) if value else RETENTION_DEFAULT
        except ValueError:
            return RETENTION_DEFAULT

    @api.autovacuum
    def _gc_old_entries(self):
        """Delete the entries older than the retention (``0``: keep them
        forever), in SQL: an audit trail only grows, one ORM unlink per row
        would not keep up."""
        days = self._emboux_retention_days()
        if not days:
            return
        self.flush_model(["date"])
        self.env.cr.execute(
            SQL(
                "DELETE FROM %s WHERE date < %s",
                SQL.identifier(self._table),
                fields.Datetime.now() - timedelta(days=days),
            )
        )
        self.invalidate_model()
