"""Connected mode: what hosting records share to be sent to an upstream API.

How a change reaches the upstream (design.md §4), and why:

* **Commit locally, deliver after commit.** The local rules run first (the
  ORM methods are unchanged); a record that changed calls
  ``_emboux_sync_enqueue``, which writes an outbox row
  (``emboux.mail.sync.event``) in the SAME transaction, tagged with the
  transaction's batch, and journals how to take the local change back
  (``emboux.mail.sync.undo``). Nothing is sent before the real COMMIT:
  not from a flushing savepoint, not while the request holds its row locks
  (quotas lock the tenant), not from a transaction Odoo may still roll
  back or replay. A password travels only in memory, in the cursor's
  ``postcommit.data``, for the length of the request.
* A ``cr.postcommit`` hook (``emboux.mail.sync.delivery``) then sends the
  batch from a cursor of its own, in dependency order, holding an advisory
  lock per *lane* (a domain, a tenant, the plan an API key takes its
  quotas from): changes of one domain or tenant go out one batch at a
  time, in order, whichever worker or server sends them; other tenants
  never wait. A refusal takes back with its batch the batches made after
  it on its lanes (they were made on top of it), never an earlier one,
  including one that commits while the refusal is being taken back. An
  undoing left for later goes before every save waiting on its lanes. A
  lane busy for longer than the upstream timeout leaves the batch to the
  scheduled delivery.
* **A refusal takes the whole change back on both sides** and reaches the
  user in the same request: the steps of the batch already accepted
  upstream are undone there, newest first (a create by a delete, a quota
  by the previous quota...), the local change is undone from its journal,
  and the hook raises the rule's own exception with the upstream's
  ``detail`` (a dialog in the backend; the portal and the REST API render
  it their way, see ``on_refusal``). Steps the upstream cannot undo (a
  password, a delete) are sent last.
* When the upstream does not answer (connection refused, timeout, 5xx),
  the rest of the batch stays ``pending``: the scheduled delivery sends it
  later with a backoff, and applies the same all-or-nothing rule to a
  refusal then; a step whose earlier try got no answer is undone upstream
  too, as that try may have landed. A change that needs a password cannot
  wait (it is never stored), so such a batch is taken back and refused
  with a clear message.
  A call without an answer may still reach the upstream later: until it
  cannot any more (``settles_at``, five read timeouts), the next changes of
  its lanes wait, lest it land after them and overwrite them, and the
  reconcile leaves its object alone.
* Exactly once: a batch is sent only by whoever holds its lanes and sees
  it pending in a snapshot taken after locking them, and it is marked
  delivered before the locks are released. A create sent again after an
  answer was lost meets "already exists": a receipt (written with the
  delivery) or a comparison with the upstream object proves it ours
  (``emboux.mail.sync.matching``); anything else stays a refusal. "Not
  found" on a delete is success.
* Context keys, only where an ORM method cannot take an argument:
  ``emboux_sync_skip`` (what the sync itself writes: an import, taking a
  change back), ``emboux_cascade`` (a domain's deletion deletes its
  mailboxes and aliases upstream by itself) and ``emboux_sync_creating``
  (a new mailbox's password goes with its creation).
* The upstream addresses a tenant's key by its clear token, so that token
  is kept, encrypted with a key that is not in the database
  (``EMBOUX_SECRET_KEY``): a copy of the database carries no usable token.
  Error texts are stored with tokens masked.
"""

import os
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import config

from ..exceptions import EmbouxUserError
from ..services import encryption
from ..services.emboux_client import EmbouxClient

SYNC_STATES = [("synced", "Synced"), ("pending", "Pending"), ("error", "Failed")]
# (connect, read) seconds: a save must not hang on a dead upstream
UPSTREAM_TIMEOUT = (3, 15)
# how long a call the upstream did not answer may still be on its way there
# (in read timeouts)
IN_FLIGHT_TIMEOUTS = 5
SYNC_FIELDS = frozenset({"sync_state", "sync_error", "sync_attempts"})


class EmbouxMailSyncMixin(models.AbstractModel):
    _name = "emboux.mail.sync.mixin"
    _description = "Mail hosting: sync with an upstream EmBoux API"

    sync_state = fields.Selection(
        SYNC_STATES, string="Upstream Sync", readonly=True, copy=False
    )
    sync_error = fields.Text(string="Last Sync Error", readonly=True, copy=False)
    sync_attempts = fields.Integer(readonly=True, copy=False)
    emboux_sync_enabled = fields.Boolean(
        compute="_compute_emboux_sync_enabled",
        help="An upstream EmBoux API is configured (connected mode).",
    )

    def _compute_emboux_sync_enabled(self):
        enabled = self._emboux_sync_configured()
        for record in self:
            record.emboux_sync_enabled = enabled

    @api.model
    def _emboux_sync_configured(self):
        params = self.env["ir.config_parameter"].sudo()
        return bool(params.get_param("emboux_mail.upstream_url"))

    @api.model
    def _emboux_sync_timeout(self):
        """``(connect, read)`` seconds: a save must not hang on a dead
        upstream (``emboux_mail.upstream_timeout``: the read timeout)."""
        params = self.env["ir.config_parameter"].sudo()
        try:
            read = float(params.get_param("emboux_mail.upstream_timeout") or 0)
        except ValueError:
            read = 0
        if read > 0:
            return (min(UPSTREAM_TIMEOUT[0], read), read)
        return UPSTREAM_TIMEOUT

    @api.model
    def _emboux_in_flight_until(self):
        """Until when a call sent now that got no answer may still reach
        the upstream and change it."""
        read = self._emboux_sync_timeout()[1]
        return fields.Datetime.now() + timedelta(seconds=IN_FLIGHT_TIMEOUTS * read)

    @api.model
    def _emboux_sync_client(self, token=None):
        """A client of the upstream, from Settings, with a timeout always;
        no retry of its own: the outbox retries. ``token``: a tenant key's
        own token instead of the master token."""
        params = self.env["ir.config_parameter"].sudo()
        return EmbouxClient(
            params.get_param("emboux_mail.upstream_url"),
            token or params.get_param("emboux_mail.upstream_token") or "",
            timeout=self._emboux_sync_timeout(),
            retries=0,
        )

    @api.model
    def _emboux_secret_key(self):
        """The key of the tenant tokens' encryption, from the server and
        never from the database."""
        secret = os.environ.get("EMBOUX_SECRET_KEY") or config.get("emboux_secret_key")
        if not secret:
            raise EmbouxUserError(
                self.env._(
                    "Connected mode keeps each customer API key's token "
                    "encrypted, and no encryption key is set: set the "
                    "environment variable EMBOUX_SECRET_KEY (or emboux_secret_key "
                    "in the Odoo configuration file) and restart Odoo."
                )
            )
        return secret

    @api.model
    def _emboux_encrypt(self, token):
        return encryption.encrypt(self._emboux_secret_key(), token)

    @api.model
    def _emboux_decrypt(self, encrypted):
        """The clear token of ``encrypted`` (False for none)."""
        if not encrypted:
            return False
        try:
            return encryption.decrypt(self._emboux_secret_key(), encrypted)
        except encryption.UnreadableSecret as error:
            raise EmbouxUserError(
                self.env._(
                    "A customer API key's token cannot be decrypted: "
                    "EMBOUX_SECRET_KEY is not the key it was encrypted with. "
                    "Set that key again and restart Odoo."
                )
            ) from error

    @api.model
    def _emboux_sync_only(self, vals):
        """True when a write touches only the sync bookkeeping."""
        return set(vals) <= SYNC_FIELDS

    # -- the local journal: how to take this transaction's change back -------------
    @api.model
    def _emboux_sync_journaled(self):
        """Local changes are journaled in connected mode, except what the
        sync itself writes (imports, taking a change back)."""
        return (
            not self.env.context.get("emboux_sync_skip")
            and self._emboux_sync_configured()
        )

    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        self.env["emboux.mail.sync.undo"]._emboux_journal("create", records)
        return records

    def write(self, vals):
        if not self._emboux_sync_only(vals):
            self.env["emboux.mail.sync.undo"]._emboux_journal("write", self, vals)
        return super().write(vals)

    def unlink(self):
        self.env["emboux.mail.sync.undo"]._emboux_journal("unlink", self)
        return super().unlink()

    # -- the outbox ------------------------------------------------------------------
    def _emboux_sync_lanes(self):
        """The lanes of this record's changes: changes sharing a lane are
        delivered one batch at a time, in order (see the delivery)."""
        return set()

    def _emboux_sync_enqueue(
        self, operation, payload, *, secret=None, encrypted_token=None, mark=True
    ):
        """Queue ``operation`` for each record, to be sent after commit (see
        the module docstring); nothing happens without an upstream, nor for
        what the sync itself writes (context ``emboux_sync_skip``).
        ``encrypted_token``: the tenant key's token the change addresses."""
        if not self or not self._emboux_sync_journaled():
            return
        delivery = self.env["emboux.mail.sync.delivery"]
        transaction = delivery._emboux_transaction()
        Event = self.env["emboux.mail.sync.event"].sudo()
        for record in self:
            event = Event.create(
                {
                    "res_model": record._name,
                    "res_id": record.id,
                    "name": record.display_name,
                    "operation": operation,
                    "payload": payload,
                    "batch": transaction["batch"],
                    "lanes": " ".join(sorted(record._emboux_sync_lanes())),
                    "upstream_token_encrypted": encrypted_token,
                    "company_id": record._emboux_sync_company().id,
                }
            )
            if secret is not None:
                transaction["secrets"][event.id] = secret
        if mark:
            self.sudo().write({"sync_state": "pending", "sync_error": False})

    def _emboux_sync_company(self):
        company = self["company_id"] if "company_id" in self._fields else None
        return company or self.env.company

    def action_sync_retry(self):
        """Send these records' pending changes now (an operator's action:
        it needs write access to the records)."""
        self.check_access("write")
        events = (
            self.env["emboux.mail.sync.event"]
            .sudo()
            .search(
                [
                    ("res_model", "=", self._name),
                    ("res_id", "in", self.ids),
                    ("state", "=", "pending"),
                ]
            )
        )
        events.action_retry()
        return True
