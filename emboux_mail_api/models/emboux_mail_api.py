import hmac
import os
from dataclasses import dataclass

from odoo import Command, api, models
from odoo.tools import SQL

from odoo.addons.emboux_mail.exceptions import (
    EmbouxForbidden,
    EmbouxNotFound,
    EmbouxTooManyRequests,
    EmbouxUserError,
    EmbouxValidationError,
)
from odoo.addons.emboux_mail.services import names
from odoo.addons.emboux_mail.services.stamps import stamp

from ..services.validation import INT_MAX

MASTER_ENV = "EMBOUX_API_KEY"
PASSWORD_CHANGED = "Contraseña actualizada correctamente"
# what a guess looks like: a malformed header or an unknown token (a known
# key that is revoked or expired is not a guess)
BAD_CREDENTIALS = ("Invalid authorization header format", "Invalid API key")


@dataclass(frozen=True)
class Caller:
    """Who calls: the master (``key`` empty or a master key) or a tenant."""

    key: models.BaseModel
    is_master: bool

    @property
    def tenant(self):
        return self.key.partner_id if not self.is_master else self.key.browse()

    @property
    def role(self):
        """Who the rules see: a master acts as the operator, a tenant's key
        as the customer (operators outrank customers)."""
        return "operator" if self.is_master else "customer"


KEY_SETTINGS = (
    "domains_allowed",
    "mailboxes_per_domain",
    "aliases_per_mailbox",
    "active",
    "expires_at",
)

# what GET /domains/{name}/outbound answers beside the name, in its order
OUTBOUND_FIELDS = (
    "outbound_tier",
    "outbound_status",
    "outbound_daily_limit",
    "outbound_monthly_limit",
    "outbound_sent_today",
    "outbound_sent_month",
    "outbound_enforcement",
    "bounce_count",
    "complaint_count",
    "bounce_rate",
    "complaint_rate",
    "ses_verified",
)


class EmbouxMailApi(models.AbstractModel):
    """The REST API's operations, one method per route, over the rules of
    ``emboux_mail``. Controllers only parse, call one of these and serialise;
    every refusal is an ``emboux_mail`` exception carrying status and detail.

    Runs as the API's own user (``user_emboux_api``), whose group grants
    exactly what the API needs; tenant isolation is explicit here on top of
    it, and a resource of another tenant answers exactly like a missing one.
    """

    _name = "emboux.mail.api"
    _description = "EmBoux REST API"

    # -- authentication --------------------------------------------------------
    @api.model
    def _api_authenticate(self, authorization, master_required=False, address=None):
        """The caller of a Bearer ``authorization``. A wrong header or token
        from ``address`` is counted; once that address is throttled, its
        failures answer 429, while a valid key still passes: a key is never
        locked out by someone else's failures (nor slowed down by looking
        them up: only a failure asks whether its address is throttled)."""
        Failure = self.env["emboux.mail.api.auth.failure"].sudo()
        try:
            caller = self._api_caller(authorization)
        except EmbouxForbidden as error:
            if error.detail not in BAD_CREDENTIALS or not address:
                raise
            retry_after = Failure._emboux_retry_after(address)
            if retry_after:
                raise EmbouxTooManyRequests(
                    self.env._("Too many failed authentication attempts"),
                    "Too many failed authentication attempts",
                    retry_after,
                ) from error
            registry = self.env.registry
            self.env.cr.postrollback.add(
                lambda: Failure._emboux_record_failure(registry, address)
            )
            raise
        if master_required and not caller.is_master:
            raise EmbouxForbidden(
                self.env._("Master token required"), "Master token required"
            )
        return caller

    @api.model
    def _api_caller(self, authorization):
        scheme, _sep, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise EmbouxForbidden(
                self.env._("Invalid authorization header format"),
                "Invalid authorization header format",
            )
        Key = self.env["emboux.mail.api.key"]
        master_token = os.environ.get(MASTER_ENV)
        if master_token and hmac.compare_digest(token.encode(), master_token.encode()):
            return Caller(Key.browse(), True)
        key = Key._emboux_check_token(token)
        return Caller(key, key.is_master)

    # -- lookups (404 for what the caller may not see) --------------------------
    def _api_scope(self, caller, domain):
        if caller.is_master:
            return domain
        return [*domain, ("partner_id", "=", caller.tenant.id)]

    @api.model
    def _api_find(self, model, caller, domain, detail):
        """The one record ``domain`` names in the caller's scope, its columns
        read by the search itself (those Odoo would read at its first field:
        the route reads it next), or 404 with ``detail``."""
        Model = self.env[model]
        columns = [
            name
            for name, field in Model._fields.items()
            if field.prefetch is True and field.is_accessible(self.env)
        ]
        record = Model.search_fetch(self._api_scope(caller, domain), columns, limit=1)
        if not record:
            raise EmbouxNotFound(detail, detail)
        return record

    @api.model
    def _api_domain(self, caller, name):
        try:
            name = names.normalize_domain(name)
        except names.InvalidName:
            name = None
        return self._api_find(
            "emboux.mail.domain", caller, [("name", "=", name)], "Domain not found"
        )

    @api.model
    def _api_tenant(self, partner_ref, create=False):
        """The tenant known as ``partner_ref``; created on demand when the
        master names a tenant this database has not seen yet."""
        Partner = self.env["res.partner"].with_context(active_test=False)
        tenant = Partner.search([("emboux_partner_ref", "=", partner_ref)], limit=1)
        if not tenant and create:
            # as superuser: defaults of other modules (Invoicing's invoice
            # report) read models the API's own user has no access to
            tenant = Partner.sudo().create(
                {
                    "name": partner_ref,
                    "is_company": True,
                    "emboux_partner_ref": partner_ref,
                }
            )
        return tenant.sudo(False)

    @api.model
    def _api_page(self, model, caller, domain, limit, offset):
        """One page of ``model`` in the caller's scope, and the scope's size."""
        scope = self._api_scope(caller, domain)
        records = self._api_slice(model, scope, limit, offset)
        total = self._api_total(
            len(records), limit, offset, lambda: self.env[model].search_count(scope)
        )
        return records, total

    @api.model
    def _api_total(self, shown, limit, offset, count):
        """The size of a list of which a page shows ``shown`` items: known
        without ``count()`` when the page ends before its limit (as when no
        limit is asked, the clients' usual request) and shows something or
        starts at the top."""
        if (limit is None or shown < limit) and (shown or not offset):
            return (offset or 0) + shown
        return count()

    @api.model
    def _api_slice(self, model, scope, limit, offset):
        Model = self.env[model]
        # limit=0 asks for no item; Odoo's search would read it as no limit
        if limit == 0:
            return Model
        return Model.search(scope, limit=limit, offset=offset or 0)

    # -- domains ---------------------------------------------------------------
    @api.model
    def _api_domain_dict(self, domain):
        return domain._emboux_api_dict()

    @api.model
    def _api_domain_create(self, caller, name, values):
        """A master places a name deliberately, verified unless it asks
        otherwise (then possibly with the token of the record to look for);
        a customer's name must be available and proven."""
        Domain = self.env["emboux.mail.domain"]
        if not caller.is_master:
            domain = Domain._emboux_create_for_customer(caller.tenant, name)
            return self._api_domain_dict(domain)
        partner_ref = values.get("partner_ref")
        tenant = self._api_tenant(partner_ref, create=True) if partner_ref else None
        vals = {"name": name, "partner_id": tenant.id if tenant else False}
        if values.get("verified") is not None:
            vals["verified"] = values["verified"]
        if values.get("verification_token"):
            vals["verification_token"] = values["verification_token"]
        return self._api_domain_dict(Domain.create(vals))

    @api.model
    def _api_domain_list(self, caller, limit=None, offset=None):
        """The page as JSON text, written by the query that selects it (see
        ``_emboux_api_items``), and the size of the list."""
        Domain = self.env["emboux.mail.domain"]
        scope = self._api_scope(caller, [])
        # limit=0 asks for no item; Odoo's search would read it as no limit
        if limit == 0:
            shown, items = 0, "[]"
        else:
            query = Domain._search(scope, offset or 0, limit, Domain._order)
            shown, items = Domain._emboux_api_items(query)
        total = self._api_total(
            shown, limit, offset, lambda: Domain.search_count(scope)
        )
        return items, total

    @api.model
    def _api_verify(self, caller, name):
        """Look for the ownership record now; ``verified: false`` with the
        record still to publish is an answer, not an error."""
        domain = self._api_domain(caller, name)
        domain._emboux_verify()
        pending = not domain.verified
        record = {
            "record_type": "TXT",
            "name": domain.name,
            "value": domain.verification_record,
        }
        return {
            "name": domain.name,
            "verified": domain.verified,
            "verification_token": domain.verification_token or "",
            "dns_records": [record] if pending else [],
            "message": "TXT record not found yet: publish it and try again"
            if pending
            else "Domain verified",
        }

    @api.model
    def _api_domain_delete(self, caller, name):
        self._api_domain(caller, name).unlink()

    @api.model
    def _api_register_subdomain(self, caller, name):
        domain = self._api_domain(caller, name)
        if len(domain.name.split(".")) <= 2:
            raise EmbouxUserError(
                self.env._("%(name)s is not a subdomain.", name=domain.name),
                detail="Name is not a subdomain",
            )
        parent = domain.parent_id or self.env[
            "emboux.mail.domain"
        ]._emboux_wildcard_parent(domain.name, domain.partner_id)
        same_owner = parent.partner_id == domain.partner_id
        if not (parent.is_wildcard and parent.verified and same_owner):
            raise EmbouxUserError(
                self.env._(
                    "%(name)s has no verified wildcard parent.", name=domain.name
                ),
                detail="Parent domain is not a verified wildcard",
            )
        newly_verified = not domain.verified
        domain.write(
            {
                "parent_id": parent.id,
                "verified": True,
                "verified_by": domain.verified_by or "parent",
                "provider": parent.provider,
                "verification_token": "",
                "dkim_tokens": [],
                "dns_records": [],
            }
        )
        if newly_verified:
            domain._emboux_log_verified()
        return self._api_registration_dict(domain)

    @api.model
    def _api_registration_dict(self, domain):
        return {
            "name": domain.name,
            "verification_token": domain.verification_token or "",
            "dkim_tokens": domain.dkim_tokens or [],
            "verified": domain.verified,
            "dns_records": domain.dns_records or [],
            "provider": domain.provider or "",
        }

    @api.model
    def _api_set_parent(self, caller, name, values):
        domain = self._api_domain(caller, name)
        vals = {}
        if "is_wildcard" in values:
            vals["is_wildcard"] = values["is_wildcard"]
        if "parent_domain" in values:
            vals["parent_id"] = (
                self._api_find(
                    "emboux.mail.domain",
                    caller,
                    [("name", "=", names.normalize_domain(values["parent_domain"]))],
                    "Parent domain not found",
                ).id
                if values["parent_domain"]
                else False
            )
        domain.write(vals)
        return {
            "name": domain.name,
            "parent_domain": domain.parent_id.name or None,
            "is_wildcard": domain.is_wildcard,
        }

    @api.model
    def _api_dns_check(self, caller, name):
        domain = self._api_domain(caller, name)
        result = domain._emboux_check_dns_now()
        return {
            "name": domain.name,
            "all_ok": result.all_ok,
            "records": [record.as_api() for record in result.records],
        }

    @api.model
    def _api_set_owner(self, caller, name, partner_ref):
        domain = self._api_domain(caller, name)
        previous = domain.partner_id.emboux_partner_ref or None
        if partner_ref == previous:
            return {
                "name": domain.name,
                "partner_ref": previous,
                "previous_partner_ref": previous,
            }
        new_owner = (
            self._api_tenant(partner_ref) if partner_ref else self.env["res.partner"]
        )
        if partner_ref and not new_owner:
            raise EmbouxUserError(
                self.env._("No active API key for %(ref)s.", ref=partner_ref),
                detail=f"No active api_key for partner_ref={partner_ref}",
            )
        domain._emboux_transfer_owner(new_owner)
        return {
            "name": domain.name,
            "partner_ref": partner_ref,
            "previous_partner_ref": previous,
        }

    @api.model
    def _api_set_suspended(self, caller, name, suspended, reason=None):
        domain = self._api_domain(caller, name)
        if suspended:
            domain._emboux_suspend(reason or caller.role)
        else:
            domain._emboux_activate(caller.role)
        message = "Domain suspended" if suspended else "Domain activated"
        return {"name": domain.name, "suspended": domain.suspended, "message": message}

    # -- outbound mail and transfer --------------------------------------------
    @api.model
    def _api_outbound(self, caller, name, values=None):
        """The domain's sending settings and figures, after changing
        ``values`` (the rules refuse what the caller's role may not set)."""
        domain = self._api_domain(caller, name)
        if values:
            domain._emboux_set_outbound(values, caller.role)
        return {
            "name": domain.name,
            **{field: domain[field] for field in OUTBOUND_FIELDS},
        }

    @api.model
    def _api_outbound_increment(self, caller, name, recipients=1, size=0):
        """Count one outgoing message as the mail server's policy service
        does, with the same function: the caps are checked and the counters
        moved atomically, under the counter's row lock."""
        domain = self._api_domain(caller, name)
        Counter = self.env["emboux.mail.outbound.counter"]
        # the function reads the tables: pending writes first, fresh rows after
        domain.flush_recordset()
        Counter.flush_model()
        self.env.cr.execute(
            SQL(
                "SELECT * FROM emboux_mailserver.outbound_count(NULL, %s, %s, %s)",
                domain.name,
                recipients,
                size,
            )
        )
        verdict = self.env.cr.dictfetchone()
        Counter.invalidate_model()
        domain.invalidate_recordset()
        return {
            "name": domain.name,
            "outbound_sent_today": verdict["sent_today"],
            "outbound_sent_month": verdict["sent_month"],
            "allowed": verdict["allowed"],
            "reason": verdict["reason"] or None,
        }

    @api.model
    def _api_transfer(self, caller, name, transfer_monthly_mb=None):
        """The monthly transfer ceiling and use; only the operator sets the
        ceiling (the route and the rules both refuse a customer)."""
        domain = self._api_domain(caller, name)
        if transfer_monthly_mb is not None:
            domain._emboux_set_outbound(
                {"transfer_monthly_mb": transfer_monthly_mb}, caller.role
            )
        return {
            "name": domain.name,
            "transfer_monthly_mb": domain.transfer_monthly_mb,
            "transfer_used_mb": round(domain.transfer_used_mb, 2),
        }

    @api.model
    def _api_retention(self, caller, name, retention_days=None):
        """How long the domain keeps its mail; a customer sets it within its
        plan (see ``_emboux_set_retention``)."""
        domain = self._api_domain(caller, name)
        if retention_days is not None:
            domain._emboux_set_retention(retention_days, caller.role)
        return {"name": domain.name, "retention_days": domain.retention_days}

    # -- mailboxes -------------------------------------------------------------
    @api.model
    def _api_mailbox_dict(self, mailbox):
        return mailbox._emboux_api_dict()

    @api.model
    def _api_stored_name(self, normalize, value):
        """``value`` as the rules store it (punycode, lower-case), or None
        when it is not a valid name: then nothing can match it."""
        try:
            return normalize(value)
        except names.InvalidName:
            return None

    @api.model
    def _api_mailbox(self, caller, email):
        email = self._api_stored_name(names.normalize_email, email)
        return self._api_find(
            "emboux.mail.mailbox", caller, [("email", "=", email)], "Mailbox not found"
        )

    @api.model
    def _api_mailbox_create(self, caller, domain_name, email, password):
        domain = self._api_domain(caller, domain_name)
        mailbox = self.env["emboux.mail.mailbox"].create(
            {"email": email, "domain_id": domain.id, "password": password}
        )
        return self._api_mailbox_dict(mailbox)

    @api.model
    def _api_mailbox_list(self, caller, domain_id=None, limit=None, offset=None):
        """A page of mailboxes; the total is the sum of their domains'
        counters, which the mailbox rules keep exact: counting the rows
        themselves costs a tenant more with every mailbox it adds. The
        domains are read under the same record rules as their mailboxes
        (a mailbox's company is its domain's)."""
        domain = [("domain_id", "=", domain_id)] if domain_id is not None else []
        scope = self._api_scope(caller, domain)
        mailboxes = self._api_slice("emboux.mail.mailbox", scope, limit, offset)
        domains = [("id", "=", domain_id)] if domain_id is not None else []

        def count():
            Domain = self.env["emboux.mail.domain"]
            query = Domain._search(self._api_scope(caller, domains))
            Domain.flush_model(["mailbox_count"])
            counter = SQL.identifier(query.table, "mailbox_count")
            self.env.cr.execute(query.select(SQL("COALESCE(SUM(%s), 0)", counter)))
            return self.env.cr.fetchone()[0]

        total = self._api_total(len(mailboxes), limit, offset, count)
        return [self._api_mailbox_dict(mailbox) for mailbox in mailboxes], total

    @api.model
    def _api_mailbox_password(self, caller, email, password):
        self._api_mailbox(caller, email).password = password
        return {"message": PASSWORD_CHANGED}

    @api.model
    def _api_mailbox_delete(self, caller, email):
        self._api_mailbox(caller, email).unlink()

    @api.model
    def _api_mailbox_quota(self, caller, email, quota_mb=None):
        mailbox = self._api_mailbox(caller, email)
        if quota_mb is not None:
            mailbox._emboux_set_quota(quota_mb, caller.role)
        return {
            "email": mailbox.email,
            "quota_mb": mailbox.quota_mb,
            "used_mb": round(mailbox.used_mb, 2),
        }

    # -- aliases ---------------------------------------------------------------
    @api.model
    def _api_alias_dict(self, alias):
        return alias._emboux_api_dict()

    @api.model
    def _api_alias_create(self, caller, domain_name, source, destination):
        domain = self._api_domain(caller, domain_name)
        alias = self.env["emboux.mail.alias"].create(
            {"source": source, "destination": destination, "domain_id": domain.id}
        )
        return self._api_alias_dict(alias)

    @api.model
    def _api_alias_list(self, caller, domain_id=None, limit=None, offset=None):
        domain = [("domain_id", "=", domain_id)] if domain_id is not None else []
        aliases, total = self._api_page(
            "emboux.mail.alias", caller, domain, limit, offset
        )
        return [self._api_alias_dict(alias) for alias in aliases], total

    @api.model
    def _api_alias_delete(self, caller, source):
        source = self._api_stored_name(names.normalize_alias_source, source)
        self._api_find(
            "emboux.mail.alias", caller, [("source", "=", source)], "Alias not found"
        ).unlink()

    # -- API keys (master only) --------------------------------------------------
    @api.model
    def _api_key_dict(self, key, token):
        return key._emboux_api_dict(token)

    @api.model
    def _api_key(self, token):
        key = self.env["emboux.mail.api.key"]._emboux_find_by_token(token)
        if not key:
            raise EmbouxNotFound(self.env._("API key not found"), "API key not found")
        return key

    @api.model
    def _api_key_create(self, values):
        tenant = self._api_tenant(values["partner_ref"], create=True)
        vals = {
            "name": values["partner_ref"],
            "partner_id": tenant.id,
            "token": values["token"],
            "active": values.get("active", True),
            "expires_at": values.get("expires_at"),
        }
        quotas = {k: values[k] for k in self._api_quota_fields() if k in values}
        if quotas:
            vals.update(quotas, quota_override=True)
        key = self.env["emboux.mail.api.key"].create(vals)
        return self._api_key_dict(key, values["token"])

    @api.model
    def _api_quota_fields(self):
        return ("domains_allowed", "mailboxes_per_domain", "aliases_per_mailbox")

    @api.model
    def _api_key_update(self, token, values):
        key = self._api_key(token)
        vals = {k: v for k, v in values.items() if k in ("active", "expires_at")}
        quotas = {k: values[k] for k in self._api_quota_fields() if k in values}
        if quotas:
            key.quota_override = True
            vals.update(quotas)
        key.write(vals)
        return self._api_key_dict(key, token)

    @api.model
    def _api_key_delete(self, token):
        self._api_key(token).unlink()

    @api.model
    def _api_key_usage(self, token, since=None):
        key = self._api_key(token)
        Usage = self.env["emboux.mail.api.usage"]
        domain = [("key_id", "=", key.id)]
        if since:
            domain.append(("used_at", ">=", since))
        groups = Usage._read_group(domain, ["route"], ["__count"])
        return {
            "token": token,
            "partner_ref": key.partner_id.emboux_partner_ref or None,
            "since": stamp(since),
            "requests": sum(count for _route, count in groups),
            "by_route": {route: count for route, count in groups},
            "domains_used": key.domains_used,
            "last_used_at": stamp(key.last_used_at),
            # what the key allows, for a connected Odoo to compare with its own
            **{
                name: value
                for name, value in self._api_key_dict(key, token).items()
                if name in KEY_SETTINGS
            },
        }

    # -- webhooks (master only) --------------------------------------------------
    @api.model
    def _api_webhooks(self):
        """Endpoints as the API manages them: as superuser (the API's user
        has no rights on them and their secrets are the system group's; the
        routes are master only), disabled ones included."""
        return self.env["emboux.mail.webhook"].sudo().with_context(active_test=False)

    @api.model
    def _api_webhook_dict(self, webhook, secret=None):
        """An endpoint as the API shows it; its ``secret`` only when given
        (created or rotated: shown once)."""
        values = {
            "id": webhook.id,
            "url": webhook.url,
            "events": webhook.topic_ids.mapped("code"),
            "partner_ref": webhook.partner_id.emboux_partner_ref or None,
            "active": webhook.active,
            "disabled_reason": webhook.disabled_reason or None,
        }
        if secret:
            values["secret"] = secret
        return values

    @api.model
    def _api_webhook(self, webhook_id):
        """The endpoint whose id is ``webhook_id`` (the path's text)."""
        webhook = self._api_webhooks()
        if webhook_id.isdecimal() and int(webhook_id) <= INT_MAX:
            webhook = webhook.browse(int(webhook_id)).exists()
        if not webhook:
            raise EmbouxNotFound(self.env._("Webhook not found"), "Webhook not found")
        return webhook

    @api.model
    def _api_webhook_event_types(self):
        """The event types an endpoint may hear (``emboux_mail``'s data)."""
        return self.env["emboux.mail.webhook.topic"].sudo().search([]).mapped("code")

    @api.model
    def _api_webhook_topics(self, codes):
        """The event types ``codes``; 422 for a list naming none, or one that
        is unknown."""
        topics = (
            self.env["emboux.mail.webhook.topic"].sudo().search([("code", "in", codes)])
        )
        unknown = ", ".join(sorted(set(codes) - set(topics.mapped("code"))))
        if unknown:
            raise EmbouxValidationError(
                self.env._("Unknown event type: %(types)s", types=unknown),
                detail=f"Unknown event type: {unknown}",
                status=422,
                field="events",
            )
        if not topics:
            raise EmbouxValidationError(
                self.env._("At least one event type is required"),
                detail="At least one event type is required",
                status=422,
                field="events",
            )
        return topics

    @api.model
    def _api_webhook_create(self, values):
        """A new endpoint, for one customer or (``partner_ref`` null) every
        customer; its secret is answered this once."""
        partner_ref = values.get("partner_ref")
        customer = self._api_tenant(partner_ref) if partner_ref else None
        if partner_ref and not customer:
            raise EmbouxNotFound(
                self.env._("No customer is known as %(ref)s.", ref=partner_ref),
                "Customer not found",
            )
        webhook = self._api_webhooks().create(
            {
                "url": values["url"],
                "topic_ids": [
                    Command.set(self._api_webhook_topics(values["events"]).ids)
                ],
                "partner_id": customer.id if customer else False,
                "secret_shown": True,
            }
        )
        return self._api_webhook_dict(webhook, webhook.secret)

    @api.model
    def _api_webhook_list(self, caller, limit=None, offset=None):
        # the page as _api_webhooks() reads: disabled endpoints included
        as_manager = self.with_env(self._api_webhooks().env)
        found, total = as_manager._api_page(
            "emboux.mail.webhook", caller, [], limit, offset
        )
        return [self._api_webhook_dict(webhook) for webhook in found], total

    @api.model
    def _api_webhook_get(self, webhook_id):
        return self._api_webhook_dict(self._api_webhook(webhook_id))

    @api.model
    def _api_webhook_update(self, webhook_id, values):
        """Change the URL, the events or the state (enabling also forgets
        why it was disabled); ``rotate_secret`` answers a new secret, once,
        while the previous one still signs for a while."""
        webhook = self._api_webhook(webhook_id)
        vals = {}
        if "url" in values:
            vals["url"] = values["url"]
        if "events" in values:
            topics = self._api_webhook_topics(values["events"])
            vals["topic_ids"] = [Command.set(topics.ids)]
        if values.get("active") is False:
            vals["active"] = False
        elif values.get("active") and not webhook.active:
            webhook.action_enable()
        secret = None
        if values.get("rotate_secret"):
            vals["secret_shown"] = True  # the answer shows it
            secret = webhook._emboux_rotate_secret()
        webhook.write(vals)
        return self._api_webhook_dict(webhook, secret)

    @api.model
    def _api_webhook_delete(self, webhook_id):
        self._api_webhook(webhook_id).unlink()
