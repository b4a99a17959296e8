"""The outbox of the connected mode (see ``emboux_mail_sync_mixin``)."""

import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from ..exceptions import (
    EmbouxNotFound,
    EmbouxQuotaError,
    EmbouxUserError,
    EmbouxValidationError,
)
from ..services import emboux_client as ec
from ..services import hashing
from ..services.redaction import redact
from .emboux_mail_reconcile import _all_items

_logger = logging.getLogger(__name__)

OPERATIONS = [
    ("domain_create", "Create domain"),
    ("domain_register", "Register subdomain"),
    ("domain_verify", "Verify domain"),
    ("domain_delete", "Delete domain"),
    ("domain_suspend", "Suspend domain"),
    ("domain_activate", "Activate domain"),
    ("domain_owner", "Change domain owner"),
    ("domain_parent", "Change domain parent"),
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
RECEIPT_TTL = timedelta(days=1)
BATCH = 20
# no answer, or the upstream failed: try again later
TRANSIENT = (ec.EmbouxUnavailable, ec.EmbouxServerError)


class SecretMissing(Exception):
    """A queued change needs a password that was never stored."""


class EmbouxMailSyncEvent(models.Model):
    """One change to send to the upstream EmBoux API, in ``id`` order.

    ``payload`` never holds a password; the token of a tenant's key (needed
    to address it upstream) is kept encrypted in ``upstream_token_encrypted``,
    as on the key, and erased once the change is delivered. ``last_error``
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
    idempotency_key = fields.Char(
        compute="_compute_idempotency_key", store=True, index=True
    )
    upstream_token_encrypted = fields.Char(groups="base.group_system", copy=False)
    state = fields.Selection(
        [("pending", "Pending"), ("done", "Delivered"), ("error", "Refused")],
        default="pending",
        required=True,
        index=True,
        readonly=True,
    )
    attempts = fields.Integer(readonly=True)
    next_attempt_at = fields.Datetime(readonly=True)
    last_error = fields.Text(readonly=True)
    done_at = fields.Datetime(readonly=True)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )

    @api.depends("res_model", "operation", "payload")
    def _compute_idempotency_key(self):
        """Names the upstream object, the same across Odoo's replays of a
        request (the record ids are not: sequences are not rolled back)."""
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

    # -- receipts: committed in a cursor of their own --------------------------
    def _emboux_receipt_key(self):
        key = self.idempotency_key
        if self.operation == "key_create":
            key = f"{key}:{hashing.token_index(self._emboux_token() or '')}"
        return key

    def _emboux_receipt_add(self):
        with self.env.registry.cursor() as cr:
            cr.execute(
                SQL(
                    "INSERT INTO emboux_mail_sync_receipt (key, create_date) "
                    "VALUES (%s, now() at time zone 'utc')",
                    self._emboux_receipt_key(),
                )
            )

    def _emboux_receipt_has(self):
        since = fields.Datetime.now() - RECEIPT_TTL
        with self.env.registry.cursor() as cr:
            cr.execute(
                SQL(
                    "SELECT 1 FROM emboux_mail_sync_receipt "
                    "WHERE key = %s AND create_date > %s LIMIT 1",
                    self._emboux_receipt_key(),
                    since,
                )
            )
            return bool(cr.fetchone())

    def _emboux_receipt_drop(self):
        """Forget the receipts of this object: its own key, or its key and a
        ``:`` suffix (a key's receipt names its token) — never another
        object whose name merely starts the same (``example.com.au``)."""
        with self.env.registry.cursor() as cr:
            cr.execute(
                SQL(
                    "DELETE FROM emboux_mail_sync_receipt "
                    "WHERE key = %s OR starts_with(key, %s)",
                    self.idempotency_key,
                    self.idempotency_key + ":",
                )
            )

    # -- delivery --------------------------------------------------------------
    def _emboux_record(self):
        return self.env[self.res_model].sudo().browse(self.res_id).exists()

    def _emboux_call(self, client, secret):
        """The upstream call of this change; returns its answer."""
        p = self.payload or {}
        op = self.operation
        if op in NEEDS_SECRET and not secret:
            raise SecretMissing(
                self.env._("The password of this change was not kept: set it again.")
            )
        token = self._emboux_token()
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
            "domain_suspend": lambda: client.suspend(p["name"]),
            "domain_activate": lambda: client.activate(p["name"]),
            "domain_owner": lambda: client.set_owner(p["name"], p.get("partner_ref")),
            "domain_parent": lambda: client.set_parent(
                p["name"], p.get("parent_domain"), p.get("is_wildcard", False)
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
        try:
            return calls[op]()
        except ec.EmbouxBadRequest as error:
            if op not in CREATES or "already exists" not in str(error.detail):
                raise
            if not self._emboux_receipt_has() and not self._emboux_upstream_match(
                client
            ):
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
            if op in DELETES:
                return None  # already gone: the state matches
            raise

    def _emboux_verify_upstream(self, client, name):
        """The upstream checks the TXT record itself: until it sees it too
        (DNS propagates), the change waits and is tried again later."""
        answer = client.verify_domain(name)
        if not answer.get("verified"):
            raise ec.EmbouxUnavailable(
                f"the upstream does not see the TXT record of {name} yet"
            )
        return answer

    def _emboux_upstream_match(self, client):
        """For a create replayed from the outbox that met "already exists"
        without a receipt (the answer to an earlier try was lost, so no
        receipt was written): True when the upstream object is exactly the
        one this change asks for, owned by the same tenant (read with that
        tenant's own key). Anything else stays a refusal."""
        if not self.attempts:  # not a replay from the outbox
            return False
        p = self.payload or {}
        try:
            if self.operation == "key_create":
                usage = client.api_key_usage(self._emboux_token())
                return bool(p.get("partner_ref")) and (
                    usage.get("partner_ref") == p["partner_ref"]
                )
            if self.operation == "domain_create":
                return self._emboux_upstream_owned(p["name"], p.get("partner_ref"))
            if self.operation == "alias_create":
                record = self._emboux_record()
                domain = next(
                    (
                        d
                        for d in _all_items(client.list_domains)
                        if d["name"] == p["domain_name"]
                    ),
                    None,
                )
                if not record or not domain:
                    return False
                aliases = _all_items(client.list_aliases, domain_id=domain["id"])
                if (p["source"], p["destination"]) not in {
                    (a["source"], a["destination"]) for a in aliases
                }:
                    return False
                return self._emboux_upstream_owned(
                    p["domain_name"], record.domain_id.partner_ref
                )
        except ec.EmbouxApiError as error:
            _logger.info("sync %s: cannot compare upstream: %s", self.name, error)
        return False  # mailbox_create: its password cannot be compared

    def _emboux_upstream_owned(self, domain_name, partner_ref):
        """Does the tenant ``partner_ref`` own ``domain_name`` upstream? Asked
        with each of the tenant's own keys (an orphan cannot be proven ours)."""
        if not partner_ref:
            return False
        keys = (
            self.env["emboux.mail.api.key"]
            .sudo()
            .with_context(active_test=False)
            .search([("partner_id.emboux_partner_ref", "=", partner_ref)])
            .filtered("upstream_token_encrypted")
        )
        mixin = self.env["emboux.mail.sync.mixin"]
        for key in keys:
            token = mixin._emboux_decrypt(key.upstream_token_encrypted)
            client = mixin._emboux_sync_client(token=token)
            try:
                if any(
                    d["name"] == domain_name for d in _all_items(client.list_domains)
                ):
                    return True
            except ec.EmbouxApiError:
                continue
            finally:
                client.close()
        return False

    def _emboux_deliver(self, client, secret=None):
        """Send this change; on success mark it and its record done."""
        self.ensure_one()
        answer = self._emboux_call(client, secret)
        if self.operation in CREATES:
            self._emboux_receipt_add()
        elif self.operation in DELETES:
            self._emboux_receipt_drop()
        record = self._emboux_record()
        if self.operation == "domain_register" and record and isinstance(answer, dict):
            record.with_context(tracking_disable=True).write(
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
                "upstream_token_encrypted": False,
                "attempts": self.attempts + 1,
            }
        )
        if record and "sync_state" in record._fields:
            record.with_context(tracking_disable=True).write(
                {"sync_state": "synced", "sync_error": False, "sync_attempts": 0}
            )
        return answer

    def _emboux_postpone(self, error):
        """A failed try: keep the change pending, with a backoff."""
        self.ensure_one()
        attempts = self.attempts + 1
        delay = timedelta(minutes=min(2 ** (attempts - 1), 60))
        message = self.env._(
            "Upstream EmBoux API unreachable, will retry: %(error)s",
            error=redact(str(error)),
        )
        self.write(
            {
                "attempts": attempts,
                "last_error": message,
                "next_attempt_at": fields.Datetime.now() + delay,
            }
        )
        self._emboux_mark_record("pending", message, attempts)
        self.env.ref("emboux_mail.ir_cron_emboux_mail_sync")._trigger(
            self.next_attempt_at
        )

    def _emboux_refuse(self, message):
        """The upstream refused a queued change: it stays visible, failed."""
        self.ensure_one()
        message = redact(message)
        self.write(
            {"state": "error", "attempts": self.attempts + 1, "last_error": message}
        )
        self._emboux_mark_record("error", message, self.attempts)

    def _emboux_mark_record(self, state, message, attempts):
        record = self._emboux_record()
        if record and "sync_state" in record._fields:
            record.with_context(tracking_disable=True).write(
                {"sync_state": state, "sync_error": message, "sync_attempts": attempts}
            )

    @api.model
    def _emboux_local_error(self, error):
        """The rule's own exception for an upstream refusal, its message
        being the upstream's ``detail``."""
        detail = error.detail if error.detail is not None else str(error)
        if not isinstance(detail, str):  # 422: FastAPI's list of errors
            detail = "; ".join(
                str(item.get("msg", item)) if isinstance(item, dict) else str(item)
                for item in detail
            )
        detail = redact(detail)
        message = self.env._("Upstream EmBoux API: %(detail)s", detail=detail)
        if isinstance(error, ec.EmbouxForbidden) and error.quota_exceeded:
            return EmbouxQuotaError(message, detail)
        if isinstance(error, ec.EmbouxNotFound):
            return EmbouxNotFound(message, detail)
        if isinstance(error, ec.EmbouxValidation):
            return EmbouxValidationError(message, detail=detail, status=422)
        if isinstance(error, ec.EmbouxBadRequest):
            return EmbouxValidationError(message, detail=detail)
        return EmbouxUserError(message, detail=detail, status=error.status or 400)

    @api.model
    def _emboux_backlog(self, exclude_ids=()):
        """The oldest change of earlier transactions still to deliver."""
        return self.search(
            [("state", "=", "pending"), ("id", "not in", list(exclude_ids))],
            order="id",
            limit=1,
        )

    @api.model
    def _emboux_send_transaction(self):
        """Precommit hook: send this transaction's changes, in order.

        A refusal raises (the save rolls back); no answer keeps them in the
        outbox, unless one of them carries a password."""
        data = self.env.cr.precommit.data
        events = self.browse(data.get("emboux_sync_events", [])).exists()
        secrets = data.get("emboux_sync_secrets", {})
        events = events.sorted("id")
        if not events:
            return
        unavailable_message = self.env._(
            "The upstream EmBoux API cannot be reached and a password is never "
            "stored here: try again when it is back."
        )
        if self._emboux_backlog(events.ids):
            # earlier changes wait for the upstream: queue behind them
            if any(event.operation in NEEDS_SECRET for event in events):
                raise EmbouxUserError(
                    self.env._(
                        "Earlier changes are still waiting for the upstream EmBoux "
                        "API; a password cannot wait with them: try again later."
                    )
                )
            self.env.ref("emboux_mail.ir_cron_emboux_mail_sync")._trigger()
            self.env.flush_all()
            return
        client = self.env["emboux.mail.sync.mixin"]._emboux_sync_client()
        try:
            for index, event in enumerate(events):
                try:
                    event._emboux_deliver(client, secrets.get(event.id))
                except TRANSIENT as error:
                    rest = events[index:]
                    if any(e.operation in NEEDS_SECRET for e in rest):
                        raise EmbouxUserError(
                            f"{unavailable_message} ({redact(str(error))})"
                        ) from error
                    event._emboux_postpone(error)
                    rest[1:]._emboux_mark_pending_all(event.last_error)
                    break
                except ec.EmbouxApiError as error:
                    raise self._emboux_local_error(error) from error
        finally:
            client.close()
        self.env.flush_all()

    def _emboux_mark_pending_all(self, message):
        for event in self:
            event._emboux_mark_record("pending", message, 0)

    # -- the scheduled delivery --------------------------------------------------
    @api.model
    def _cron_deliver(self):
        """Deliver the outbox in ``id`` order, a batch per call (the
        scheduler commits after each call and calls again while
        ``remaining`` is above zero). The oldest pending change blocks the
        others until it is delivered or refused: order is kept."""
        now = fields.Datetime.now()
        events = self.search([("state", "=", "pending")], order="id", limit=BATCH)
        done = 0
        if not events or (
            events[0].next_attempt_at and events[0].next_attempt_at > now
        ):
            if events:
                self.env.ref("emboux_mail.ir_cron_emboux_mail_sync")._trigger(
                    events[0].next_attempt_at
                )
            self.env["ir.cron"]._notify_progress(done=0, remaining=0)
            return
        client = self.env["emboux.mail.sync.mixin"]._emboux_sync_client()
        stopped = False
        try:
            for event in events:
                try:
                    event._emboux_deliver(client)
                except TRANSIENT as error:
                    event._emboux_postpone(error)
                    stopped = True
                    break
                except ec.EmbouxApiError as error:
                    event._emboux_refuse(str(self._emboux_local_error(error)))
                except (SecretMissing, EmbouxUserError) as error:
                    # a password not kept, a token this server cannot decrypt
                    event._emboux_refuse(str(error))
                done += 1
        finally:
            client.close()
        remaining = 0 if stopped else self.search_count([("state", "=", "pending")])
        _logger.info("upstream sync: %s delivered, %s pending", done, remaining)
        self.env["ir.cron"]._notify_progress(done=done, remaining=remaining)

    def action_retry(self):
        """Put these changes back in the queue and deliver them now."""
        self.check_access("write")
        self.write({"state": "pending", "next_attempt_at": False})
        self.env.ref("emboux_mail.ir_cron_emboux_mail_sync")._trigger()
        return True


class EmbouxMailSyncReceipt(models.Model):
    """Proof that this database created an object upstream, written in a
    cursor of its own so that it survives a rollback of the request (see
    ``_emboux_call``); read only through SQL."""

    _name = "emboux.mail.sync.receipt"
    _description = "Mail hosting: object created upstream"
    _log_access = False

    key = fields.Char(required=True, index=True)
    create_date = fields.Datetime(index=True)

    @api.autovacuum
    def _gc_expired(self):
        """A receipt only answers replays within ``RECEIPT_TTL``."""
        self.env.cr.execute(
            SQL(
                "DELETE FROM emboux_mail_sync_receipt WHERE create_date < %s",
                fields.Datetime.now() - RECEIPT_TTL,
            )
        )
