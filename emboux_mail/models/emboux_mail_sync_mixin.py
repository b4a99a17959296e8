"""Connected mode: what hosting records share to be sent to an upstream API.

How a change reaches the upstream (design.md §4), and why:

* The local rules run first (the ORM methods are unchanged); a record that
  changed then calls ``_emboux_sync_enqueue``, which writes an outbox row
  (``emboux.mail.sync.event``) in the SAME transaction, with a payload
  without secrets. A password travels only in memory, in the cursor's
  ``precommit.data``, for the length of the transaction.
* One ``cr.precommit`` hook per transaction sends this transaction's rows,
  in order, just before commit (Odoo runs it inside its serialization retry
  loop). An upstream refusal (4xx) raises the rule's own exception with the
  upstream's ``detail``: the whole save rolls back, nothing half-done stays.
* When the upstream does not answer (connection refused, timeout, 5xx), the
  rows stay ``pending`` and are committed with the change: the outbox is
  durable, the cron delivers it in order with a backoff. A change needing
  a password cannot wait in the outbox (it is never stored), so it is
  refused with a clear message instead.
* The upstream addresses a tenant's key by its clear token, so that token
  is kept, encrypted with a key that is not in the database
  (``EMBOUX_SECRET_KEY``): a copy of the database carries no usable token.
  Error texts are stored with tokens masked.
* Odoo replays a request after a serialization failure: the POST already
  sent then answers "already exists". Every successful create leaves a
  receipt, committed in a cursor of its own, so that a replay (or the
  cron) recognises its own object and treats the answer as success; an
  object created upstream by someone else stays a refusal. "Not found" on
  a delete is always success (the state matches).
"""

import os

from odoo import api, fields, models
from odoo.tools import config

from ..exceptions import EmbouxUserError
from ..services import encryption
from ..services.emboux_client import EmbouxClient

SYNC_STATES = [("synced", "Synced"), ("pending", "Pending"), ("error", "Failed")]
# (connect, read) seconds: a save must not hang on a dead upstream
UPSTREAM_TIMEOUT = (3, 15)
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
    def _emboux_sync_client(self, token=None):
        """A client of the upstream, from Settings, with a timeout always
        (``emboux_mail.upstream_timeout``: the read timeout in seconds);
        no retry of its own: the outbox retries. ``token``: a tenant key's
        own token instead of the master token."""
        params = self.env["ir.config_parameter"].sudo()
        timeout = UPSTREAM_TIMEOUT
        try:
            read = float(params.get_param("emboux_mail.upstream_timeout") or 0)
        except ValueError:
            read = 0
        if read > 0:
            timeout = (min(UPSTREAM_TIMEOUT[0], read), read)
        return EmbouxClient(
            params.get_param("emboux_mail.upstream_url"),
            token or params.get_param("emboux_mail.upstream_token") or "",
            timeout=timeout,
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

    def _emboux_sync_enqueue(
        self,
        operation,
        payload=None,
        name=None,
        secret=None,
        encrypted_token=None,
        mark=True,
    ):
        """Queue ``operation`` for each record (see the module docstring);
        nothing happens without an upstream, nor for what the reconcile
        imports from it (context ``emboux_sync_skip``). ``encrypted_token``:
        the tenant key's token the change addresses, encrypted."""
        if self.env.context.get("emboux_sync_skip"):
            return
        if not self or not self._emboux_sync_configured():
            return
        Event = self.env["emboux.mail.sync.event"].sudo()
        data = self.env.cr.precommit.data
        queued = data.setdefault("emboux_sync_events", [])
        secrets = data.setdefault("emboux_sync_secrets", {})
        for record in self:
            event = Event.create(
                {
                    "res_model": record._name,
                    "res_id": record.id,
                    "name": name or record.display_name,
                    "operation": operation,
                    "payload": payload or {},
                    "upstream_token_encrypted": encrypted_token,
                    "company_id": record._emboux_sync_company().id,
                }
            )
            queued.append(event.id)
            if secret is not None:
                secrets[event.id] = secret
        if mark:
            self.sudo().write({"sync_state": "pending", "sync_error": False})
        if not data.get("emboux_sync_hook"):
            data["emboux_sync_hook"] = True
            Event = self.env["emboux.mail.sync.event"].sudo()
            self.env.cr.precommit.add(Event._emboux_send_transaction)

    def _emboux_sync_company(self):
        company = self["company_id"] if "company_id" in self._fields else None
        return company or self.env.company

    def action_sync_retry(self):
        """Deliver these records' undelivered changes again, now (an
        operator's action: it needs write access to the records)."""
        self.check_access("write")
        events = (
            self.env["emboux.mail.sync.event"]
            .sudo()
            .search(
                [
                    ("res_model", "=", self._name),
                    ("res_id", "in", self.ids),
                    ("state", "in", ("pending", "error")),
                ]
            )
        )
        events.action_retry()
        return True
