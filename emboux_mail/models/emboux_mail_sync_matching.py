"""Connected mode: is an object the upstream already has our own?

A create sent again (its first answer was lost, or the delivery that sent
it could not record it) meets "already exists". It is success only when the
object is provably the one this change asks for: a receipt of ours, or the
same object owned by the same tenant, read with that tenant's own key.
Anything else stays a refusal: another party's object is never adopted.
"""

import logging

from odoo import api, models

from ..services import emboux_client as ec
from ..services.sync_errors import TRANSIENT
from .emboux_mail_reconcile import _all_items

_logger = logging.getLogger(__name__)


class EmbouxMailSyncMatching(models.AbstractModel):
    _name = "emboux.mail.sync.matching"
    _description = "Mail hosting: recognise our own objects upstream"

    @api.model
    def _emboux_is_ours(self, event, client):
        Receipt = self.env["emboux.mail.sync.receipt"]
        if Receipt._emboux_has(event._emboux_receipt_key()):
            return True
        p = event.payload or {}
        try:
            if event.operation == "key_create":
                usage = client.api_key_usage(event._emboux_token())
                return bool(p.get("partner_ref")) and (
                    usage.get("partner_ref") == p["partner_ref"]
                )
            if event.operation == "domain_create":
                return self._emboux_owned(p["name"], self._emboux_refs(event))
            if event.operation == "mailbox_create":
                # inside a domain of the same tenant: its new password is set
                return self._emboux_owned(p["domain_name"], self._emboux_refs(event))
            if event.operation == "alias_create":
                if not self._emboux_alias_matches(client, p):
                    return False
                # sent before by this very change (its answer lost), or in a
                # domain of the same tenant
                return bool(event.attempts) or self._emboux_owned(
                    p["domain_name"], self._emboux_refs(event)
                )
        except TRANSIENT:
            raise  # no answer: the change is tried again later
        except ec.EmbouxApiError as error:
            _logger.info("sync %s: cannot compare upstream: %s", event.name, error)
        return False

    @api.model
    def _emboux_alias_matches(self, client, p):
        domain = next(
            (
                d
                for d in _all_items(client.list_domains)
                if d["name"] == p["domain_name"]
            ),
            None,
        )
        if not domain:
            return False
        aliases = _all_items(client.list_aliases, domain_id=domain["id"])
        return (p["source"], p["destination"]) in {
            (a["source"], a["destination"]) for a in aliases
        }

    @api.model
    def _emboux_refs(self, event):
        """The tenants that may own the change's domain upstream: the one
        it was queued for, and the one owning it here now (a transfer may
        have been sent meanwhile)."""
        p = event.payload or {}
        name = p.get("domain_name") or p.get("name")
        domain = self.env["emboux.mail.domain"].sudo().search([("name", "=", name)])
        return {p.get("partner_ref"), domain.partner_ref} - {None, False}

    @api.model
    def _emboux_owned(self, domain_name, partner_refs):
        """Does one of the tenants ``partner_refs`` own ``domain_name``
        upstream? Asked with each of their own keys (an orphan cannot be
        proven ours)."""
        if not partner_refs:
            return False
        keys = (
            self.env["emboux.mail.api.key"]
            .sudo()
            .with_context(active_test=False)
            .search([("partner_id.emboux_partner_ref", "in", list(partner_refs))])
        )
        mixin = self.env["emboux.mail.sync.mixin"]
        for encrypted in keys._emboux_upstream_tokens():
            token = mixin._emboux_decrypt(encrypted)
            client = mixin._emboux_sync_client(token=token)
            try:
                if any(
                    d["name"] == domain_name for d in _all_items(client.list_domains)
                ):
                    return True
            except TRANSIENT:
                raise
            except ec.EmbouxApiError:
                continue
            finally:
                client.close()
        return False
