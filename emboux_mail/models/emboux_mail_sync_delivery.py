"""Connected mode: sending a transaction's changes after it committed.

See ``emboux_mail_sync_mixin`` for the design. A batch is sent by the
request that made it (a ``postcommit`` hook) or by the scheduled delivery,
always from a cursor of its own, while holding the advisory locks of its
lanes: a domain's or a tenant's changes go out one batch at a time, in the
order they were made, whatever the number of workers and servers.
"""

import functools
import logging
import time
import uuid
from datetime import timedelta

from psycopg2 import errors

from odoo import SUPERUSER_ID, api, fields, models
from odoo.http import request
from odoo.tools import SQL

from ..exceptions import EmbouxUserError
from ..services import emboux_client as ec
from ..services.redaction import redact
from ..services.sync_errors import TRANSIENT, local_error
from .emboux_mail_sync_event import CREATES, DELETES, NEEDS_SECRET

_logger = logging.getLogger(__name__)
TRANSACTION = "emboux_mail.sync"
ON_REFUSAL = "emboux_mail.sync_on_refusal"
BATCHES_PER_RUN = 20
# a batch its request has not sent after this long is the scheduler's
ORPHAN = timedelta(minutes=1)
# a batch queued behind another is looked at again no sooner than this
QUEUED_DELAY = timedelta(seconds=10)
# an earlier batch of the same lanes, never tried yet, goes first
LET_EARLIER_GO = object()
LOCAL_TRIES = 6
CONCURRENCY = (errors.SerializationFailure, errors.DeadlockDetected)


def deliver(registry, batch, secrets=None, wait=False, lang=None):
    """Send ``batch`` if it is still pending and nothing it depends on waits
    before it; returns the local exception of a refusal (the change taken
    back on both sides), else None.

    Two cursors: the first holds the lanes' advisory locks (waiting for
    them at most the upstream timeout with ``wait``, else not at all) until
    the second, opened once they are held so that its snapshot sees what
    the previous holder sent, has delivered and committed, and the local
    side of a take-back is done. An earlier batch that was never tried is
    about to be sent by the request that made it: with ``wait``, this one
    lets it go first (up to the timeout)."""
    deadline = None
    while True:
        here = []  # the local side of a take-back, once the outbox committed
        with registry.cursor() as lock_cr:
            env = api.Environment(lock_cr, SUPERUSER_ID, {"lang": lang})
            delivery = env["emboux.mail.sync.delivery"]
            if wait and deadline is None:
                timeout = env["emboux.mail.sync.mixin"]._emboux_sync_timeout()[1]
                deadline = time.monotonic() + timeout
            lanes = delivery._emboux_lanes(batch)
            if delivery._emboux_lock_lanes(lanes, wait):
                with registry.cursor() as cr:
                    env = api.Environment(cr, SUPERUSER_ID, {"lang": lang})
                    outcome = env["emboux.mail.sync.delivery"]._emboux_deliver_locked(
                        batch, secrets or {}, wait and time.monotonic() < deadline, here
                    )
            else:
                # busy: a request's own batch waits no longer; else the
                # sender holding the lanes, or the next run, sends it
                outcome = (
                    delivery._emboux_queued(batch, secrets, here) if wait else None
                )
            # still holding the lanes: no save of them is sent meanwhile, so
            # one made on top of the change taken back is found pending
            _do_here(registry, lang, here)
        if outcome is not LET_EARLIER_GO:
            return outcome
        time.sleep(0.02)


def _do_here(registry, lang, here):
    """The local side of a take-back, in cursors of their own (a fresh
    snapshot each time): the outbox already says what was undone upstream,
    so this is retried when it meets a concurrent save of the same rows."""
    for attempt in range(LOCAL_TRIES):
        if not here:
            return
        try:
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {"lang": lang})
                env["emboux.mail.sync.delivery"]._emboux_do_here(here)
            return
        except CONCURRENCY as error:
            _logger.info("upstream sync: taking back here, try %s: %s", attempt, error)
            time.sleep(0.05 * 2**attempt)
    _logger.error("upstream sync: could not take back here: %s", here)


def _after_commit(registry, lang, cron, transaction, data):
    """The ``postcommit`` hook of a transaction that changed hosting
    records: send its batch now; a refusal (already taken back on both
    sides) is raised to the caller, rendered as it asked (``data``: the
    cursor's ``postcommit.data``, see ``_emboux_on_refusal``)."""
    refusal = deliver(
        registry, transaction["batch"], transaction["secrets"], wait=True, lang=lang
    )
    if refusal is None:
        return
    if cron:
        # a scheduled job's change: recorded on the outbox and the record,
        # not a failure of the job
        _logger.warning("upstream sync: a scheduled change was refused: %s", refusal)
        return
    on_refusal = data.get(ON_REFUSAL)
    raise on_refusal(refusal) if on_refusal and request else refusal


class EmbouxMailSyncDelivery(models.AbstractModel):
    _name = "emboux.mail.sync.delivery"
    _description = "Mail hosting: deliver changes to the upstream API"

    # -- the transaction ---------------------------------------------------------
    @api.model
    def _emboux_transaction(self):
        """This transaction's batch id and passwords (in memory only), and
        the hook that sends them once it committed."""
        data = self.env.cr.postcommit.data
        transaction = data.get(TRANSACTION)
        if transaction is None:
            transaction = data[TRANSACTION] = {
                "batch": uuid.uuid4().hex,
                "secrets": {},
            }
            hook = functools.partial(
                _after_commit,
                self.env.registry,
                self.env.context.get("lang"),
                bool(self.env.context.get("cron_id")),
                transaction,
                data,
            )
            self.env.cr.postcommit.add(hook)
        return transaction

    @api.model
    def _emboux_on_refusal(self, render):
        """How this request shows a refusal of its change: ``render(error)``
        returns the exception to raise instead (the portal's page, the REST
        API's JSON); the backend's default is the error itself (a dialog)."""
        self.env.cr.postcommit.data[ON_REFUSAL] = render

    # -- lanes -------------------------------------------------------------------
    @api.model
    def _emboux_lanes(self, batch):
        """The lanes of ``batch``'s pending changes (the batch itself when
        they have none)."""
        self.env.cr.execute(
            SQL(
                "SELECT DISTINCT unnest(string_to_array(lanes, ' ')) "
                "FROM emboux_mail_sync_event WHERE batch = %s AND state = 'pending'",
                batch,
            )
        )
        lanes = {row[0] for row in self.env.cr.fetchall() if row[0]}
        return lanes or {f"batch:{batch}"}

    @api.model
    def _emboux_lock_lanes(self, lanes, wait):
        """Take the advisory locks of ``lanes`` until this transaction ends;
        False when another sender holds one of them (for longer than the
        upstream timeout, with ``wait``)."""
        cr = self.env.cr
        if wait:
            seconds = self.env["emboux.mail.sync.mixin"]._emboux_sync_timeout()[1]
            cr.execute(SQL("SET LOCAL lock_timeout = %s", f"{int(seconds * 1000)}ms"))
        function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
        try:
            # one statement, in the lanes' order (no deadlock between senders)
            cr.execute(
                SQL(
                    "SELECT %s(key)::text FROM (SELECT hashtextextended(lane, 0) "
                    "AS key FROM unnest(%s::text[]) AS lane ORDER BY lane) AS lanes",
                    SQL.identifier(function),
                    sorted(lanes),
                )
            )
            taken = all(row[0] != "false" for row in cr.fetchall())
        except errors.LockNotAvailable:
            taken = False
        if not taken:
            cr.rollback()  # the locks taken so far go
        return taken

    # -- a batch -----------------------------------------------------------------
    @api.model
    def _emboux_deliver_locked(self, batch, secrets, may_wait, here):
        """``deliver`` once the lanes are held: this cursor sees every
        batch their previous holders committed."""
        events = self.env["emboux.mail.sync.event"].search(
            [("batch", "=", batch), ("state", "=", "pending")], order="id"
        )
        if not events:
            refusal = self._emboux_closed_by_others(batch)
            if refusal is None:
                self.env["emboux.mail.sync.undo"]._emboux_forget(batch)
            # else the sender that took it back undoes it here from its
            # journal, once its outbox committed: it must still find it
            return refusal
        fresh = min(events.mapped("create_date")) > fields.Datetime.now() - ORPHAN
        if not secrets and fresh and any(e.operation in NEEDS_SECRET for e in events):
            return None  # its request, holding the password, is about to send it
        earlier = self._emboux_waits_behind(events)
        if earlier:
            left = earlier.filtered(lambda e: e.attempts or e.next_attempt_at)
            if may_wait and not left:
                return LET_EARLIER_GO
            # no sooner than the earliest of them may go again, or can no
            # longer arrive upstream
            after = min(
                filter(
                    None,
                    (
                        e.next_attempt_at if e.state == "pending" else e.settles_at
                        for e in left
                    ),
                ),
                default=None,
            )
            return self._emboux_queued(batch, secrets, here, after)
        return self._emboux_send(events, secrets, here)

    @api.model
    def _emboux_closed_by_others(self, batch):
        """A batch another sender took back (an earlier save it waited behind
        was refused): its request still hears why."""
        closed = self.env["emboux.mail.sync.event"].search(
            [("batch", "=", batch), ("state", "in", ("error", "undone"))], limit=1
        )
        return EmbouxUserError(closed.last_error) if closed else None

    @api.model
    def _emboux_waits_behind(self, events):
        """The changes of other batches, on one of these lanes, that these
        must wait behind (an older value landing after a newer one would
        undo it there): the earlier ones that still wait for the upstream,
        or whose unanswered call may still reach it; and, for a save, every
        undoing still to send. An undoing goes before any save waiting on
        its lanes, whatever their ids: a save is numbered when it is made,
        not when it commits, so one made while a refusal was being taken
        back can be numbered before the undoing yet be newer upstream. An
        undoing waits only for earlier undoings and unsettled calls: the
        pending saves before it on its lanes were made after the change it
        undoes (that change went out only once nothing waited before it)."""
        Event = self.env["emboux.mail.sync.event"]
        lanes = list({lane for event in events for lane in (event.lanes or "").split()})
        if not lanes:
            return Event
        undoing = all(event.undoes_id for event in events)
        self.env.cr.execute(
            SQL(
                "SELECT id FROM emboux_mail_sync_event "
                "WHERE batch != %s AND string_to_array(lanes, ' ') && %s::text[] "
                "AND ((id < %s AND (settles_at > %s OR (state = 'pending' "
                "AND (undoes_id IS NOT NULL OR NOT %s)))) "
                "OR (state = 'pending' AND undoes_id IS NOT NULL AND NOT %s))",
                events[0].batch,
                lanes,
                min(events.ids),
                fields.Datetime.now(),
                undoing,
                undoing,
            )
        )
        return Event.browse(row[0] for row in self.env.cr.fetchall())

    @api.model
    def _emboux_queued(self, batch, secrets, here, after=None):
        """The batch cannot go now: the scheduled delivery sends it later,
        unless it carries a password, which cannot wait (never stored)."""
        events = self.env["emboux.mail.sync.event"].search(
            [("batch", "=", batch), ("state", "=", "pending")]
        )
        if secrets and any(e.operation in NEEDS_SECRET for e in events):
            error = EmbouxUserError(
                self.env._(
                    "Earlier changes are still waiting for the upstream EmBoux "
                    "API; a password cannot wait with them: try again later."
                )
            )
            self._emboux_take_back(events, events.browse(), error, here)
            return error
        # left to the scheduled delivery (no request is about to send it)
        when = max(after or fields.Datetime.now(), fields.Datetime.now() + QUEUED_DELAY)
        events.write({"next_attempt_at": when})
        self.env.ref("emboux_mail.ir_cron_emboux_mail_sync")._trigger(when)
        return None

    @api.model
    def _emboux_send(self, events, secrets, here):
        """Send ``events`` in order; see the module docstring of the mixin
        for what a refusal and no answer do."""
        ordered = events._emboux_in_order()
        client = self.env["emboux.mail.sync.mixin"]._emboux_sync_client()
        # the steps an earlier try delivered before the upstream stopped
        # answering: a refusal now takes them back with the rest
        delivered = events.search(
            [
                ("batch", "=", events[0].batch),
                ("state", "=", "done"),
                ("undoes_id", "=", False),
            ],
            order="id",
        )
        ordered = delivered | ordered
        try:
            for index, event in enumerate(ordered):
                if event in delivered:
                    continue
                secret = secrets.get(event.id)
                try:
                    if event.operation in NEEDS_SECRET and secret is None:
                        raise EmbouxUserError(
                            self.env._(
                                "The password of this change was not kept: "
                                "set it again."
                            )
                        )
                    event._emboux_deliver(client, secret)
                except TRANSIENT as error:
                    rest = ordered[index:]
                    if not any(e.operation in NEEDS_SECRET for e in rest):
                        rest._emboux_postpone(error)
                        return None
                    # the call without an answer may have been applied: it
                    # is undone with the steps delivered before it, once it
                    # can no longer be on its way
                    delivered |= event
                    unanswered = event
                    error = EmbouxUserError(
                        self.env._(
                            "The upstream EmBoux API cannot be reached and a "
                            "password is never stored here: try again when it is "
                            "back. (%(error)s)",
                            error=redact(str(error)),
                        )
                    )
                    self._emboux_take_back(
                        ordered, delivered, error, here, client, unanswered=unanswered
                    )
                    return error
                except (ec.EmbouxApiError, EmbouxUserError) as error:
                    if event.undoes_id and event.operation in CREATES:
                        # the upstream will not bring back what was deleted
                        # there: the deletion stands here too
                        here.append(("delete", event.res_model, event.res_id))
                        event._emboux_close("error", str(error))
                        continue
                    if event.undoes_id:
                        # undoing must not stop half-way: tried again later
                        ordered[index:]._emboux_postpone(error)
                        return None
                    if isinstance(error, ec.EmbouxApiError):
                        error = local_error(self.env, error)
                    # an earlier try got no answer: it may have landed, and
                    # is undone as any call without an answer (a delete that
                    # landed would have met "not found", not a refusal)
                    landed = event.filtered(
                        lambda e: e.settles_at and e._emboux_inverse() is not None
                    )
                    self._emboux_take_back(
                        ordered, delivered | landed, error, here, client, event, landed
                    )
                    return error
                delivered |= event
        finally:
            client.close()
        ordered.sudo().filtered("upstream_token_encrypted").write(
            {"upstream_token_encrypted": False}
        )
        self.env["emboux.mail.sync.undo"]._emboux_forget(events[0].batch)
        return None

    @api.model
    def _emboux_take_back(
        self,
        events,
        delivered,
        error,
        here,
        client=None,
        refused=None,
        unanswered=None,
    ):
        """All or nothing: undo upstream what ``events`` already delivered,
        newest first, and record why on every step; the local change is
        undone next, from its journal (``here``, see ``_do_here``). The
        undoing of the ``unanswered`` call is queued: sent now, it could
        reach the upstream before the call itself."""
        reason = str(error)
        stands = events.browse()  # delivered and not undoable: they stand
        for event in reversed(delivered):
            inverse = event._emboux_inverse()
            if inverse is None:
                _logger.warning(
                    "upstream sync: %s (%s) cannot be undone upstream",
                    event.operation,
                    event.name,
                )
                stands |= event
                continue
            if event == unanswered:
                # its undoing finds "not found" until then, which does not
                # yet mean that nothing was created
                operation, payload = inverse
                mixin = self.env["emboux.mail.sync.mixin"]
                until = mixin._emboux_in_flight_until()
                payload = dict(payload, in_flight_until=until.isoformat())
                self._emboux_queue_inverse(event, (operation, payload), error)
                continue
            try:
                event._emboux_call(client, None, *inverse)
            except ec.EmbouxApiError as failure:
                # left for the scheduled delivery, in order on its lanes
                self._emboux_queue_inverse(event, inverse, failure)
        message = self.env._("Taken back: %(reason)s", reason=reason)
        self._emboux_take_back_behind(events, reason, here)
        here.append(("take_back", events[0].batch))
        (events - (refused or events.browse()))._emboux_close("undone", message)
        if refused:
            refused._emboux_close("error", reason)
            for event in refused:
                self.env["emboux.mail.webhook.event"]._emboux_emit(
                    "sync.refused",
                    event._emboux_record(),
                    operation=event.operation,
                    reason=redact(reason),
                )
        for event in stands.filtered(lambda e: e.operation in DELETES):
            here.append(("delete", event.res_model, event.res_id))
            event.write({"state": "done"})  # gone upstream, gone here

    @api.model
    def _emboux_take_back_behind(self, events, reason, here):
        """The saves waiting behind ``events`` were made on top of them: they
        are taken back too, newest first (none of them reached the
        upstream), their local undoing listed in ``here``."""
        for later in reversed(self._emboux_waiting_behind(events)):
            here.append(("take_back", later[0].batch))
            later._emboux_close(
                "undone",
                self.env._(
                    "Taken back: an earlier change of the same domain or customer "
                    "was refused (%(reason)s)",
                    reason=reason,
                ),
            )

    @api.model
    def _emboux_do_here(self, here):
        """Undo the journaled local changes, delete again what stands
        deleted upstream, in the order ``here`` lists them. A save made on
        top of a change taken back, but committed after its sender looked
        for such saves, is found in this fresh snapshot and goes first."""
        Undo = self.env["emboux.mail.sync.undo"]
        taken = [args[0] for kind, *args in here if kind == "take_back"]
        if taken:
            events = self.env["emboux.mail.sync.event"].search(
                [("batch", "in", taken)], order="id"
            )
            refused = events.filtered(lambda e: e.state == "error") or events
            missed = []
            self._emboux_take_back_behind(events, refused[0].last_error, missed)
            here = missed + here
        for kind, *args in here:
            if kind == "take_back":
                Undo._emboux_take_back(*args)
            else:
                model, res_id = args
                record = self.env[model].sudo().browse(res_id).exists()
                record.with_context(emboux_sync_skip=True).unlink()

    @api.model
    def _emboux_waiting_behind(self, events):
        """The pending batches made after ``events`` (of one batch or more)
        on their lanes, and after those on theirs, oldest first (each a
        recordset). A batch made before one of them is not behind it, even
        on its lanes: it may have reached the upstream already."""
        Event = self.env["emboux.mail.sync.event"]
        seen = set(events.mapped("batch"))
        ahead = [events.filtered(lambda e, b=batch: e.batch == b) for batch in seen]
        batches = []
        while ahead:
            before = ahead.pop()
            lanes = {lane for event in before for lane in (event.lanes or "").split()}
            if not lanes:
                continue
            self.env.cr.execute(
                SQL(
                    "SELECT DISTINCT batch FROM emboux_mail_sync_event "
                    "WHERE state = 'pending' AND id > %s AND undoes_id IS NULL "
                    "AND NOT batch = ANY(%s) "
                    "AND string_to_array(lanes, ' ') && %s::text[]",
                    max(before.ids),
                    list(seen),
                    list(lanes),
                )
            )
            for (batch,) in self.env.cr.fetchall():
                seen.add(batch)
                batch_events = Event.search(
                    [("batch", "=", batch), ("state", "=", "pending")], order="id"
                )
                batches.append(batch_events)
                ahead.append(batch_events)
        return sorted(batches, key=lambda b: b[0].id)

    @api.model
    def _emboux_queue_inverse(self, event, inverse, failure):
        operation, payload = inverse
        _logger.warning(
            "upstream sync: undoing %s (%s) failed, queued: %s",
            event.operation,
            event.name,
            redact(str(failure)),
        )
        copy = event.sudo().copy_data()[0]
        copy.update(
            operation=operation,
            payload=payload,
            undoes_id=event.id,
            batch=uuid.uuid4().hex,
            state="pending",
            upstream_token_encrypted=event.sudo().upstream_token_encrypted,
            next_attempt_at=fields.Datetime.now(),
        )
        self.env["emboux.mail.sync.event"].create(copy)

    # -- the scheduled delivery ----------------------------------------------------
    @api.model
    def _emboux_deliver_due(self):
        """Send the pending batches whose time came, oldest first, each in a
        cursor of its own; a batch whose lanes another sender holds is left
        for the next run."""
        self.env.flush_all()
        now = fields.Datetime.now()
        self.env.cr.execute(
            SQL(
                "SELECT batch FROM emboux_mail_sync_event WHERE state = 'pending' "
                "GROUP BY batch HAVING max(coalesce(next_attempt_at, "
                "create_date + %s)) <= %s ORDER BY min(id) LIMIT %s",
                ORPHAN,
                now,
                BATCHES_PER_RUN,
            )
        )
        batches = [row[0] for row in self.env.cr.fetchall()]
        for batch in batches:
            deliver(self.env.registry, batch, lang=self.env.context.get("lang"))
        self.env.invalidate_all()  # the batches changed in other cursors
        remaining = self.env["emboux.mail.sync.event"].search_count(
            [("state", "=", "pending")]
        )
        if len(batches) < BATCHES_PER_RUN:
            remaining = 0  # the rest waits for its time: no run again now
        _logger.info(
            "upstream sync: %s batches tried, %s changes pending",
            len(batches),
            remaining,
        )
        self.env["ir.cron"]._notify_progress(done=len(batches), remaining=remaining)

    @api.model
    def _emboux_send_now(self, events):
        """Send the batches of ``events`` now, whatever their backoff; a
        batch another sender holds is left to it."""
        self.env.flush_all()
        for batch in dict.fromkeys(events.sorted("id").mapped("batch")):
            deliver(self.env.registry, batch, lang=self.env.context.get("lang"))
        self.env.invalidate_all()
