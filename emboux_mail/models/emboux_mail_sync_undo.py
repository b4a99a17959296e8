"""The local journal of connected mode: how to take a change back.

A change is committed here before it is sent upstream (see
``emboux_mail_sync_mixin``). When the upstream refuses it, the rows it
touched are put back as they were before its transaction: created records
are deleted (through the ORM, so that their chatter goes too), written
columns get their old values and deleted rows come back with their ids. The
journal keeps column values as PostgreSQL gives them (``row_to_json``), so
that one statement puts a row back whatever its column types.
"""

import json
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

# a journal whose batch closed this long ago is no take-back's any more
ORPHAN_AGE = timedelta(hours=1)
KINDS = [("create", "Created"), ("write", "Written"), ("unlink", "Deleted")]


class EmbouxMailSyncUndo(models.Model):
    _name = "emboux.mail.sync.undo"
    _description = "Mail hosting: how to take a local change back"
    _log_access = False
    _order = "id"

    batch = fields.Char(required=True, index=True)
    res_model = fields.Char(required=True)
    res_id = fields.Integer(required=True)
    kind = fields.Selection(KINDS, required=True)
    row = fields.Json(help="The columns before the change (none for a create).")

    @api.model
    def _emboux_journal(self, kind, records, vals=None, columns=None):
        """Remember how to undo ``kind`` on ``records``: for a write, the
        stored columns in ``vals`` (or ``columns``, for a change made in
        SQL) as they are now; for a delete, the whole rows. Only in
        connected mode, and not for what the sync itself writes."""
        if (
            not records
            or not self.env["emboux.mail.sync.mixin"]._emboux_sync_journaled()
        ):
            return
        rows = dict.fromkeys(records.ids)
        if kind == "write":
            columns = columns or [
                name
                for name in vals
                if records._fields.get(name)
                and records._fields[name].store
                and records._fields[name].column_type
            ]
            if not columns:
                return
        if kind != "create":
            rows = self._emboux_rows(records, columns if kind == "write" else None)
        batch = self.env["emboux.mail.sync.delivery"]._emboux_transaction()["batch"]
        self.sudo().create(
            [
                {
                    "batch": batch,
                    "res_model": records._name,
                    "res_id": res_id,
                    "kind": kind,
                    "row": row,
                }
                for res_id, row in rows.items()
            ]
        )

    @api.model
    def _emboux_rows(self, records, columns=None):
        """``{id: {column: value}}`` of ``records`` in the database now."""
        records.flush_recordset()
        self.env.cr.execute(
            SQL(
                "SELECT t.id, row_to_json(t) FROM %s t WHERE t.id IN %s",
                SQL.identifier(records._table),
                tuple(records.ids),
            )
        )
        return {
            res_id: {
                name: value
                for name, value in row.items()
                if columns is None or name in columns
            }
            for res_id, row in self.env.cr.fetchall()
        }

    @api.model
    def _emboux_take_back(self, batch):
        """Undo the local change of ``batch``, newest step first."""
        entries = self.sudo().search([("batch", "=", batch)], order="id desc")
        counters = []  # the domains and tenants whose counters may move
        for entry in entries:
            model = (
                self.env[entry.res_model]
                .sudo()
                .with_context(
                    emboux_sync_skip=True, active_test=False, tracking_disable=True
                )
            )
            record = model.browse(entry.res_id)
            counted = hasattr(model, "_emboux_counted_in")
            if counted:
                counters.append(record.exists()._emboux_counted_in())
            if entry.kind == "create":
                record.exists().unlink()
                continue
            self.env.flush_all()
            table = SQL.identifier(model._table)
            row = json.dumps(entry.row)
            # restored behind the ORM: the audit trail is told here
            audited = hasattr(model, "_emboux_audited_fields")
            names = (
                model._emboux_audited_fields().intersection(entry.row)
                if audited
                else ()
            )
            before = (
                record._emboux_audit_snapshot(names)
                if names and entry.kind == "write"
                else None
            )
            if entry.kind == "write":
                columns = [SQL.identifier(name) for name in entry.row]
                self.env.cr.execute(
                    SQL(
                        "UPDATE %s SET (%s) = (SELECT %s FROM "
                        "json_populate_record(NULL::%s, %s)) WHERE id = %s",
                        table,
                        SQL(", ").join(columns),
                        SQL(", ").join(columns),
                        table,
                        row,
                        entry.res_id,
                    )
                )
            else:
                self.env.cr.execute(
                    SQL(
                        "INSERT INTO %s SELECT * FROM json_populate_record("
                        "NULL::%s, %s) ON CONFLICT (id) DO NOTHING",
                        table,
                        table,
                        row,
                    )
                )
            self.env.invalidate_all()
            # stored values computed from these rows (quotas)
            record.modified([name for name in entry.row if name in model._fields])
            if before:
                record._emboux_audit_written(before)
            elif audited and entry.kind != "write":
                record._emboux_audit_created()
            if counted:
                counters.append(record._emboux_counted_in())
        Hosting = self.env["emboux.mail.domain"]
        for domains, tenants in counters:
            Hosting._emboux_lock_domains(domains.exists())
            Hosting._emboux_lock_tenants(tenants.exists())
        self.env.flush_all()
        entries.unlink()

    @api.model
    def _emboux_forget(self, batch):
        """The change of ``batch`` stands on both sides: its journal goes."""
        self.env.cr.execute(
            SQL("DELETE FROM emboux_mail_sync_undo WHERE batch = %s", batch)
        )

    @api.autovacuum
    def _gc_orphans(self):
        """Journals whose batch has nothing left to deliver (a crash between
        commit and delivery, a transaction that queued nothing). Not the
        recently closed ones: a batch taken back is undone here from its
        journal right after its outbox closed it."""
        self.env.cr.execute(
            SQL(
                "DELETE FROM emboux_mail_sync_undo u WHERE NOT EXISTS ("
                "SELECT 1 FROM emboux_mail_sync_event e WHERE e.batch = u.batch "
                "AND (e.state = 'pending' OR e.write_date >= %s))",
                fields.Datetime.now() - ORPHAN_AGE,
            )
        )
