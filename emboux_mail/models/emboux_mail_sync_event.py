"""The outbox of connected mode: one change to send upstream, the call it
makes and the call that undoes it (see ``emboux_mail_sync_mixin``)."""

import logging
from datetime import datetime, timedelta

from psycopg2 import errors

from odoo import api, fields, models

from ..services import emboux_client as ec
from ..services import hashing
from ..services.redaction import redact

_logger = logging.getLogger(__name__)
CONCURRENCY = (errors.SerializationFailure, errors.LockNotAvailable)

OPERATIONS = [
    ("domain_create", "Create domain"),
    ("domain_register", "Register subdomain"),
    ("domain_verify", "Verify domain"),
    ("domain_delete", "Delete domain"),
    ("domain_suspend", "Suspend domain"),
    ("domain_activate", "Activate domain"),
    ("domain_owner", "Change domain owner"),
    ("domain_parent", "Change domain parent"),
    ("domain_outbound", "Change domain sending"),
    ("domain_transfer", "Change domain transfer"),
    ("domain_retention", "Change domain retention"),
    ("mailbox_create", "Create mailbox"),
    ("mailbox_password", "Change mailbox password"),
    ("mailbox_quota", "Change mailbox quota"),
    ("mailbox_delete", "Delete mailbox"),
    ("alias_create", "Create alias"),
    ("alias_delete", "Delete alias"),
    ("key_create", "Create API key"),
    ("key_update", "Update API key"),
    ("key_delete", "Delete API key"),
]
# operations whose upstream call needs a password, never stored here
NEEDS_SECRET = frozenset({"mailbox_create", "mailbox_password"})
# operations whose replay answers 400 "... already exists"
CREATES = frozenset({"domain_create", "mailbox_create", "alias_create", "key_create"})
DELETES = frozenset({"domain_delete", "mailbox_delete", "alias_delete", "key_delete"})
# the order of a batch: what the upstream cannot undo goes last, deletes of
# what others depend on after theirs (an alias, then a mailbox, a domain)
LAST = {
    "domain_verify": 1,
    "mailbox_password": 1,
    "alias_delete": 2,
    "mailbox_delete": 3,
    "domain_delete": 4,
}
STATES = [
    ("pending", "Pending"),
    ("done", "Delivered"),
    ("error", "Refused"),
    ("undone", "Taken back"),
]


class EmbouxMailSyncEvent(models.Model):
    """One change to send to the upstream EmBoux API, delivered with the
    other changes of its transaction (``batch``).

    ``payload`` never holds a password; the token of a tenant's key (needed
    to address it upstream) is kept encrypted in ``upstream_token_encrypted``,
    as on the key, and erased once the batch is delivered. ``last_error``
    is stored with tokens masked.
    """

    _name = "emboux.mail.sync.event"
    _description = "Mail hosting: change to send upstream"
    _order = "id desc"

    res_model = fields.Char(string="Model", required=True, index=True, readonly=True)
    res_id = fields.Many2oneReference(
        string="Record", model_field="res_model", index=True, readonly=True
    )
    name = fields.Char(string="Object", readonly=True)
    operation = fields.Selection(OPERATIONS, required=True, readonly=True)
    payload = fields.Json(readonly=True)
    batch = fields.Char(
        index=True, readonly=True, help="The changes of one transaction."
    )
    lanes = fields.Char(
        readonly=True,
        help="The domains and tenants this change is ordered with, "
        "separated by spaces.",
    )
    idempotency_key = fields.Char(
        compute="_compute_idempotency_key", store=True, index=True
    )
    upstream_token_encrypted = fields.Char(groups="base.group_system", copy=False)
    state = fields.Selection(
        STATES, default="pending", required=True, index=True, readonly=True
    )
    undoes_id = fields.Many2one(
        "emboux.mail.sync.event",
        string="Undoes",
        readonly=True,
        index="btree_not_null",
        help="A change delivered, then taken back because a later step of its "
        "save was refused: this one is retried until the upstream accepts it.",
    )
    attempts = fields.Integer(readonly=True)
    next_attempt_at = fields.Datetime(readonly=True)
    settles_at = fields.Datetime(
        readonly=True,
        index="btree_not_null",
        help="A call of this change got no answer and may still reach the "
        "upstream until then: the later changes of its domain or customer wait.",
    )
    last_error = fields.Text(readonly=True)
    done_at = fields.Datetime(readonly=True)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )

    @api.depends("res_model", "operation", "payload")
    def _compute_idempotency_key(self):
        """Names the upstream object (the record id would not survive its
        deletion and creation again)."""
        for event in self:
            payload = event.payload or {}
            natural = (
                payload.get("name")
                or payload.get("email")
                or payload.get("source")
                or f"{event.res_model}/{event.res_id}"
            )
            event.idempotency_key = f"{event.res_model}:{natural}"

    def _emboux_token(self):
        """The clear token of the tenant key this change addresses, if any."""
        encrypted = self.sudo().upstream_token_encrypted
        return self.env["emboux.mail.sync.mixin"]._emboux_decrypt(encrypted)

    def _emboux_receipt_key(self):
        key = self.idempotency_key
        if self.operation == "key_create":
            key = f"{key}:{hashing.token_index(self._emboux_token() or '')}"
        return key

    def _emboux_record(self):
        return self.env[self.res_model].sudo().browse(self.res_id).exists()

    def _emboux_in_order(self):
        """This batch in the order it is sent: the order of the changes,
        except that what the upstream cannot undo comes last; the changes
        of one object never pass each other."""
        rank = {}
        for event in self.sorted("id"):
            earlier = rank.get(event.idempotency_key, 0)
            rank[event.id] = max(LAST.get(event.operation, 0), earlier)
            rank[event.idempotency_key] = rank[event.id]
        return self.sorted(lambda e: (rank[e.id], e.id))

    # -- the upstream calls ------------------------------------------------------
    def _emboux_call(self, client, secret, operation=None, payload=None):
        """The upstream call of this change (or of ``operation`` with
        ``payload``, its inverse); returns the answer."""
        p = self.payload if payload is None else payload
        op = operation or self.operation
        token = self._emboux_token() if op.startswith("key_") else None
        calls = {
            "domain_create": lambda: client.create_domain(
                p["name"],
                p.get("partner_ref"),
                verified=p.get("verified"),
                verification_token=p.get("verification_token"),
            ),
            "domain_register": lambda: client.register_subdomain(p["name"]),
            "domain_verify": lambda: self._emboux_verify_upstream(client, p["name"]),
            "domain_delete": lambda: client.delete_domain(p["name"]),
            "domain_suspend": lambda: client.suspend(p["name"], p.get("reason")),
            "domain_activate": lambda: client.activate(p["name"]),
            "domain_owner": lambda: client.set_owner(p["name"], p.get("partner_ref")),
            "domain_parent": lambda: client.set_parent(
                p["name"], p.get("parent_domain"), p.get("is_wildcard", False)
            ),
            "domain_outbound": lambda: client.set_outbound(p["name"], p["values"]),
            "domain_transfer": lambda: client.set_transfer(
                p["name"], p["transfer_monthly_mb"]
            ),
            "domain_retention": lambda: client.set_retention(
                p["name"], p["retention_days"]
            ),
            "mailbox_create": lambda: client.create_mailbox(
                p["domain_name"], p["email"], secret
            ),
            "mailbox_password": lambda: client.set_password(p["email"], secret),
            "mailbox_quota": lambda: client.set_quota(p["email"], p["quota_mb"]),
            "mailbox_delete": lambda: client.delete_mailbox(p["email"]),
            "alias_create": lambda: client.create_alias(
                p["domain_name"], p["source"], p["destination"]
            ),
            "alias_delete": lambda: client.delete_alias(p["source"]),
            "key_create": lambda: client.create_api_key(
                token, p["partner_ref"], **p.get("values", {})
            ),
            "key_update": lambda: client.update_api_key(token, **p.get("values", {})),
            "key_delete": lambda: client.delete_api_key(token),
        }
        unanswered = client.unanswered
        try:
            return calls[op]()
        except ec.EmbouxBadRequest as error:
            if (
                operation
                or op not in CREATES
                or "already exists" not in str(error.detail)
            ):
                raise
            if not self.env["emboux.mail.sync.matching"]._emboux_is_ours(self, client):
                raise
            # our own object, created by an earlier try of this change:
            # make it match what this change asks for
            _logger.info("sync %s: %s already created by us", op, self.name)
            if op == "mailbox_create":
                return client.set_password(p["email"], secret)
            if op == "key_create":
                return client.update_api_key(token, **p.get("values", {}))
            return None
        except ec.EmbouxNotFound:
            if op not in DELETES:
                raise
            in_flight = p.get("in_flight_until")
            if in_flight and fields.Datetime.now() < datetime.fromisoformat(in_flight):
                # undoing a call that got no answer: it may not be there yet
                raise ec.EmbouxUnavailable(
                    f"{self.name}: not found upstream yet, the call that creates "
                    "it may still be on its way"
                ) from None
            return None  # already gone: the state matches
        finally:
            if client.unanswered > unanswered:
                until = self.env["emboux.mail.sync.mixin"]._emboux_in_flight_until()
                self.settles_at = until

    def _emboux_verify_upstream(self, client, name):
        """The upstream checks the TXT record itself: until it sees it too
        (DNS propagates), the change waits and is tried again later."""
        answer = client.verify_domain(name)
        if not answer.get("verified"):
            raise ec.EmbouxUnavailable(
                f"the upstream does not see the TXT record of {name} yet"
            )
        return answer

    def _emboux_inverse(self):
        """``(operation, payload)`` that undoes this delivered change
        upstream, or None when the upstream offers no way back (a password,
        a delete: they are sent last)."""
        p = self.payload or {}
        op = self.operation
        if op in ("domain_create", "mailbox_create", "alias_create", "key_create"):
            kind = op.split("_")[0]
            return f"{kind}_delete", p
        if op == "domain_suspend":
            if p.get("previous_reason"):  # suspended already, for another reason
                return op, dict(p, reason=p["previous_reason"])
            return "domain_activate", p
        if op == "domain_activate":
            return "domain_suspend", dict(p, reason=p.get("previous_reason"))
        if op == "domain_owner":
            return op, dict(p, partner_ref=p.get("previous_ref"))
        if op == "domain_parent":
            return op, dict(p, **p.get("previous", {}))
        if op == "domain_outbound":
            return op, dict(p, values=p["previous"])
        if op == "domain_transfer":
            return op, dict(p, transfer_monthly_mb=p["previous_mb"])
        if op == "domain_retention":
            return op, dict(p, retention_days=p["previous_days"])
        if op == "mailbox_quota":
            return op, dict(p, quota_mb=p.get("previous_quota_mb"))
        if op == "alias_delete" and p.get("destination"):
            return "alias_create", p
        if op == "key_update":
            # the upstream holds what was last delivered for this key
            last = self.search(
                [
                    ("res_model", "=", self.res_model),
                    ("res_id", "=", self.res_id),
                    ("operation", "in", ("key_create", "key_update")),
                    ("state", "=", "done"),
                    ("id", "<", self.id),
                ],
                order="id desc",
                limit=1,
            )
            return (op, dict(p, values=last.payload["values"])) if last else None
        if op == "key_delete":
            return "key_create", p
        return None

    def _emboux_deliver(self, client, secret=None):
        """Send this change and mark it delivered."""
        self.ensure_one()
        answer = self._emboux_call(client, secret)
        Receipt = self.env["emboux.mail.sync.receipt"]
        if self.operation in CREATES:
            Receipt._emboux_add(self._emboux_receipt_key())
        elif self.operation in DELETES:
            Receipt._emboux_drop(self.idempotency_key)
        record = self._emboux_record()
        if self.operation == "domain_register" and record and isinstance(answer, dict):
            record.with_context(tracking_disable=True, emboux_sync_skip=True).write(
                {
                    name: answer.get(name)
                    for name in (
                        "provider",
                        "verified",
                        "verification_token",
                        "dkim_tokens",
                        "dns_records",
                    )
                    if name in answer
                }
            )
        self.write(
            {
                "state": "done",
                "done_at": fields.Datetime.now(),
                "last_error": False,
                "attempts": self.attempts + 1,
            }
        )
        self._emboux_mark_record("synced", False, 0)
        return answer

    # -- outcomes ----------------------------------------------------------------
    @api.model
    def _emboux_unsettled(self):
        """The objects (idempotency keys) whose changes have not settled
        upstream: pending (an undoing included), or sent without an answer
        that may still land there."""
        events = self.search(
            [
                "|",
                ("state", "=", "pending"),
                ("settles_at", ">", fields.Datetime.now()),
            ]
        )
        return set(events.mapped("idempotency_key"))

    def _emboux_postpone(self, error):
        """No answer: these changes stay pending, with a backoff."""
        attempts = max(self.mapped("attempts") or [0]) + 1
        delay = timedelta(minutes=min(2 ** (attempts - 1), 60))
        message = self.env._(
            "Upstream EmBoux API unreachable, will retry: %(error)s",
            error=redact(str(error)),
        )
        when = fields.Datetime.now() + delay
        self.write(
            {"attempts": attempts, "last_error": message, "next_attempt_at": when}
        )
        for event in self:
            event._emboux_mark_record("pending", message, attempts)
        self.env.ref("emboux_mail.ir_cron_emboux_mail_sync")._trigger(when)

    def _emboux_close(self, state, message):
        """The batch ends refused or taken back: record why on it and on
        its records."""
        message = redact(message)
        self.write(
            {"state": state, "last_error": message, "upstream_token_encrypted": False}
        )
        for event in self:
            event._emboux_mark_record("error", message, event.attempts)

    def _emboux_mark_record(self, state, message, attempts):
        """Show the outcome on the record. The outbox is what counts: when
        a save of the same record runs meanwhile, the record keeps its
        state rather than undo a delivery (the next change sets it)."""
        record = self._emboux_record()
        if not record or "sync_state" not in record._fields:
            return
        vals = {"sync_state": state, "sync_error": message, "sync_attempts": attempts}
        try:
            with self.env.cr.savepoint():
                record.with_context(tracking_disable=True).write(vals)
                record.flush_recordset()
        except CONCURRENCY:
            _logger.info("sync %s: its record is being saved, state left", self.name)

    # -- actions -----------------------------------------------------------------
    @api.model
    def _cron_deliver(self):
        self.env["emboux.mail.sync.delivery"]._emboux_deliver_due()

    def action_retry(self):
        """Send these pending changes now rather than at their next try
        (with the rest of their save, in order on their lanes)."""
        self.check_access("write")
        pending = self.sudo().filtered(lambda e: e.state == "pending")
        self.env["emboux.mail.sync.delivery"].sudo()._emboux_send_now(pending)
        return True
