"""The EmBoux REST API: thin routes over ``emboux.mail.api``.

Each route is described once (``Route``): that description drives request
validation, the role check and ``/openapi.json``. A handler receives the
authenticated caller and the validated body, query and path values, calls
one ``emboux.mail.api`` method and returns its data.
"""

import dataclasses
import functools
import logging
import re

from odoo import http, release
from odoo.exceptions import AccessDenied, AccessError, MissingError, UserError
from odoo.http import request

from odoo.addons.emboux_mail.models.emboux_mail_domain import SUSPENSION_REASONS
from odoo.addons.emboux_mail.models.emboux_mail_security_log import API_KEY_CONTEXT
from odoo.addons.emboux_mail.services import dns_checker, names, passwords

from ..services import openapi
from ..services.openapi import Route
from ..services.validation import (
    ALIAS_SOURCE,
    DOMAIN,
    EMAIL,
    PASSWORD_MAX_LENGTH,
    PASSWORD_PATTERN,
    URL_PATTERN,
    Field,
    RequestInvalid,
    error,
    parse_json,
    validate,
)
from .responses import RawJSON, error_response, json_abort, json_response

_logger = logging.getLogger(__name__)
API_USER = "emboux_mail_api.user_emboux_api"
# the request log's row of this request, once written (see _record_success)
USAGE_ROW = "emboux_mail_api.usage_row"

ROUTES = []
PAGING = {"limit": Field("int", minimum=0), "offset": Field("int", minimum=0)}
LIST_QUERY = {"domain_id": Field("int"), **PAGING}
TOKEN = Field(
    "str",
    required=True,
    pattern=r"[A-Za-z0-9._~+=-]{16,256}",
    description="The key itself, chosen by the caller (16 to 256 URL-safe characters).",
)
# what a datetime given to the API may look like
WHEN = "RFC 3339, or ISO 8601 without an offset (UTC), from the year 1000"
QUOTAS = {
    "domains_allowed": Field("int", minimum=0, description="0 = unlimited"),
    "mailboxes_per_domain": Field("int", minimum=0),
    "aliases_per_mailbox": Field("int", minimum=0),
    "active": Field("bool"),
    "expires_at": Field(
        "datetime",
        nullable=True,
        description=f"{WHEN}; null = never",
    ),
}
TEXT = Field("str", required=True, min_length=1)
DOMAIN_NAME = Field("str", required=True, min_length=1, syntax=DOMAIN)
ADDRESS = Field("str", required=True, min_length=1, syntax=EMAIL)
# the mailbox password policy (``passwords``), which the rules check; its
# minimum length is a setting, published as it stands (``_live_rules``)
PASSWORD = Field(
    "str",
    required=True,
    min_length=1,
    rules={
        "minLength": passwords.MIN_LENGTH,
        "maxLength": PASSWORD_MAX_LENGTH,
        "pattern": PASSWORD_PATTERN,
    },
    description="No control characters; it must not contain the mailbox's "
    "local part (422 otherwise).",
)
LIMIT = Field(
    "int",
    minimum=0,
    description="Messages; 0 = unlimited (master only). A customer may set 1 "
    "to its plan's maximum.",
)
TIERS = Field("str", choices=("shared", "dedicated"), description="Master only")
ENFORCEMENTS = Field(
    "str",
    choices=("soft", "hard"),
    description="Master only: soft sends and bills the overage, hard refuses",
)
STATUSES = Field("str", choices=("active", "suspended"), description="Master only")
OUTBOUND = {
    "outbound_daily_limit": LIMIT,
    "outbound_monthly_limit": LIMIT,
    "outbound_tier": TIERS,
    "outbound_enforcement": ENFORCEMENTS,
    "outbound_status": STATUSES,
}
REASONS = tuple(code for code, _label in SUSPENSION_REASONS)
EVENTS = Field(
    "list",
    required=True,
    rules={"minItems": 1},
    description="The event types it hears, such as mailbox.created",
)
URL = Field(
    "str",
    required=True,
    min_length=1,
    pattern=URL_PATTERN,
    mismatch="Webhook URL refused: not an http(s) URL",
    description="http(s) to a public address (422 otherwise)",
)
KEY_SETTINGS = {
    "domains_allowed": "int",
    "mailboxes_per_domain": "int",
    "aliases_per_mailbox": "int",
    "active": "bool",
    "expires_at": "stamp?",
}
SCHEMAS = {
    "Domain": {"id": "int", "name": "str", "created_at": "stamp"},
    "DomainItem": {
        "id": "int",
        "name": "str",
        "created_at": "stamp",
        "verified": "bool",
        "suspended": "bool",
        "suspension_reason": Field("str", choices=REASONS, nullable=True),
        "parent_domain": "str?",
        "is_wildcard": "bool",
    },
    "Verification": {
        "name": "str",
        "verification_token": "str",
        "verified": "bool",
        "dns_records": {
            "type": "array",
            "items": openapi.object_schema(
                {"record_type": "str", "name": "str", "value": "str"}
            ),
        },
        "message": "str",
    },
    "Mailbox": {
        "id": "int",
        "domain_id": "int",
        "email": "str",
        "quota_mb": "int",
        "created_at": "stamp",
    },
    "Alias": {
        "id": "int",
        "domain_id": "int",
        "source": "str",
        "destination": "str",
        "created_at": "stamp",
    },
    "ApiKey": {
        "id": "int",
        "token": "str",
        "partner_ref": "str?",
        "domains_used": "int",
        **KEY_SETTINGS,
        "created_at": "stamp",
        "last_used_at": "stamp?",
    },
    "Registration": {
        "name": "str",
        "verification_token": "str",
        # a provider's DKIM tokens, listed or keyed by token
        "dkim_tokens": {"type": ["array", "object"]},
        "verified": "bool",
        "dns_records": "objects",
        "provider": "str",
    },
    "Parent": {"name": "str", "parent_domain": "str?", "is_wildcard": "bool"},
    "Owner": {"name": "str", "partner_ref": "str?", "previous_partner_ref": "str?"},
    "Suspension": {"name": "str", "suspended": "bool", "message": "str"},
    "DnsCheck": {
        "name": "str",
        "all_ok": "bool",
        "records": {
            "type": "array",
            "items": openapi.object_schema(
                {
                    "record_type": "str",
                    "name": "str",
                    "expected": "str",
                    "status": Field(
                        "str",
                        choices=(
                            dns_checker.OK,
                            dns_checker.MISSING,
                            dns_checker.INCORRECT,
                            dns_checker.UNKNOWN,
                        ),
                    ),
                }
            ),
        },
    },
    "Message": {"message": "str"},
    "Outbound": {
        "name": "str",
        "outbound_tier": TIERS,
        "outbound_status": STATUSES,
        "outbound_daily_limit": "int",
        "outbound_monthly_limit": "int",
        "outbound_sent_today": "int",
        "outbound_sent_month": "int",
        "outbound_enforcement": ENFORCEMENTS,
        "bounce_count": "int",
        "complaint_count": "int",
        "bounce_rate": "number",
        "complaint_rate": "number",
        "ses_verified": "bool",
    },
    "OutboundIncrement": {
        "name": "str",
        "outbound_sent_today": "int",
        "outbound_sent_month": "int",
        "allowed": "bool",
        "reason": "str?",
    },
    "Transfer": {
        "name": "str",
        "transfer_monthly_mb": "int",
        "transfer_used_mb": "number",
    },
    "Quota": {"email": "str", "quota_mb": "int", "used_mb": "number"},
    "Retention": {"name": "str", "retention_days": "int"},
    "Usage": {
        "token": "str",
        "partner_ref": "str?",
        "since": "stamp?",
        "requests": "int",
        "by_route": "counts",
        "domains_used": "int",
        "last_used_at": "stamp?",
        **KEY_SETTINGS,
    },
    "Webhook": {
        "id": "int",
        "url": "str",
        "events": "strings",
        "partner_ref": "str?",
        "active": "bool",
        "disabled_reason": "str?",
        "secret": "str",
    },
}
# answered only where the route says so (created, or rotated)
OPTIONAL_ANSWERS = {"Webhook": ("secret",)}
# a path parameter names a resource: never a slash (that is another path)
SEGMENT = {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}
PATH_PARAMS = {
    "domain_name": {**SEGMENT, "example": "mycompany.com"},
    "email": {**SEGMENT, "example": "hello@mycompany.com"},
    "source": {**SEGMENT, "example": "info@mycompany.com"},
    "token": {**SEGMENT, "example": "emb_k7f2a9xP3mNq8Zr4"},
    "webhook_id": {**SEGMENT, "example": "1"},
}

# the documented examples (EmBoux's own pages), completed with what this API
# adds to them
DOMAIN_STATE = {
    "verified": True,
    "suspended": False,
    "suspension_reason": None,
    "parent_domain": None,
    "is_wildcard": False,
}
MAILBOX = {"id": 1, "domain_id": 1, "email": "hello@mycompany.com", "quota_mb": 2048}
ALIAS = {
    "id": 1,
    "domain_id": 1,
    "source": "info@mycompany.com",
    "destination": "hello@mycompany.com",
}
API_KEY = {
    "id": 1,
    "token": "emb_k7f2a9xP3mNq8Zr4",
    "partner_ref": "partner_42",
    "domains_allowed": 10,
    "domains_used": 0,
    "mailboxes_per_domain": 5,
    "aliases_per_mailbox": 20,
    "active": True,
    "expires_at": "2026-12-31T23:59:59",
    "created_at": "2025-01-15T10:00:00",
    "last_used_at": None,
}


def _check_names(route, body):
    """422 for a syntactically invalid domain or address, at its field."""
    errors = []
    for field, spec in route.body.items():
        if not spec.syntax or body.get(field) is None:
            continue
        try:
            spec.syntax.normalize(body[field])
        except names.InvalidName as exc:
            rules = request.env["emboux.mail.domain"]
            message = "Value error, " + rules._emboux_invalid_name_message(exc, field)
            errors.append(error("body", field, message, "value_error", body[field]))
    if errors:
        raise RequestInvalid(errors)


def _record_success(caller, route):
    """Count a served request for its key in the request's own transaction
    (no cursor of its own to open; replayed after a concurrency failure, it
    still counts once). The key's ``last_used_at``, when due, is stamped
    once that transaction has committed, in a cursor of its own, so that
    the key's concurrent requests never wait on its row."""
    if not caller or not caller.key:
        return
    Key = request.env["emboux.mail.api.key"]
    cr, key_id = request.env.cr, caller.key.id
    name = f"{route.method} {route.path}"
    cr.postcommit.data[USAGE_ROW] = Key._emboux_log_use(cr, key_id, name, route.status)
    if caller.key._emboux_stamp_due():
        cr.postcommit.add(
            functools.partial(Key._emboux_stamp_later, request.env.registry, key_id)
        )


def _record_use(caller, route, status, now=False):
    """Count a refused request for its key, in a cursor of its own once the
    transaction has ended; or ``now``: it has committed, and its change was
    then refused upstream, which becomes the status of its logged row."""
    if not caller or not caller.key:
        return
    Key = request.env["emboux.mail.api.key"]
    registry = request.env.registry
    logged = request.env.cr.postcommit.data.get(USAGE_ROW) if now else None
    if logged:
        Key._emboux_restate_use(registry, logged, status)
        return
    record = functools.partial(
        Key._emboux_record_use,
        registry,
        caller.key.id,
        f"{route.method} {route.path}",
        status,
        stamp=caller.key._emboux_stamp_due(),
    )
    if now:
        record()
        return
    request.env.cr.postcommit.add(record)
    request.env.cr.postrollback.add(record)


def _serve(route, handler, controller, path_values):
    """Authenticate, validate, run ``handler``, and answer JSON; any refusal
    is raised as a JSON error so that the request's writes are rolled back.

    Runs as the API's own user, not as superuser: its group holds exactly
    the rights the API needs, and the caller's key goes in the context so
    that the security log names it."""
    # the id from the cached XML id, without ``ref``'s existence query
    user_id = request.env["ir.model.data"]._xmlid_to_res_id(API_USER, True)
    request.update_env(user=user_id)
    api = request.env["emboux.mail.api"]
    httprequest = request.httprequest
    caller = None
    try:
        caller = api._api_authenticate(
            httprequest.headers.get("Authorization"),
            master_required=route.master,
            address=httprequest.remote_addr,
        )
        # the audit log names the key behind each change: no creation note
        # and no following by the API's own user in every record's chatter
        request.update_context(
            **{API_KEY_CONTEXT: caller.key.id or 0},
            mail_create_nolog=True,
            mail_create_nosubscribe=True,
        )
        api = request.env["emboux.mail.api"]
        # connected mode sends the change once committed: a refusal then is
        # still this request's answer, as any other ({"detail"})
        request.env["emboux.mail.sync.delivery"]._emboux_on_refusal(
            functools.partial(_refusal, caller=caller, route=route, now=True)
        )
        body = {}
        if route.body:
            raw = httprequest.get_data(cache=True)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = "\x00"
            data = parse_json(text) if route.body_required or text.strip() else {}
            body = validate(route.body, data, "body")
            _check_names(route, body)
        query = validate(route.query, httprequest.args.to_dict(), "query")
        result = handler(controller, api, caller, body=body, query=query, **path_values)
        request.env.cr.flush()
    except RequestInvalid as exc:
        _record_use(caller, route, 422)
        raise json_abort(422, {"detail": exc.errors}) from exc
    except (UserError, AccessError, AccessDenied) as exc:
        raise _refusal(exc, caller, route) from exc
    _record_success(caller, route)
    if route.status == 204:
        return json_response(None, 204)
    headers = {}
    if route.response and route.response.startswith("["):
        result, total = result
        headers["X-Total-Count"] = str(total)
    return json_response(result, route.status, headers)


def _refusal(exc, caller, route, now=False):
    """The JSON answer to a refused request (to raise)."""
    status, detail = error_status(exc)
    _record_use(caller, route, status, now=now)
    if status == 422:
        # a value the rules refused: still FastAPI's list of errors
        field = getattr(exc, "field", None)
        detail = [error("body", field, str(detail), "value_error")]
        return json_abort(422, {"detail": detail})
    headers = {}
    if getattr(exc, "retry_after", None):
        headers["Retry-After"] = str(exc.retry_after)
    return error_response(status, detail, headers)


def error_status(exc):
    """The status and ``detail`` answered for an Odoo exception."""
    if hasattr(exc, "status") and hasattr(exc, "detail"):
        return exc.status, exc.detail
    if isinstance(exc, AccessError | AccessDenied):
        return 403, "Forbidden"
    if isinstance(exc, MissingError):
        return 404, "Not found"
    return 400, str(exc)


def api_route(route):
    """Declare ``route``: an Odoo ``type="http"`` route that runs without a
    session, on the primary database even when it only reads: a client
    reads at once what it just wrote, which a replica may not have yet."""
    ROUTES.append(route)
    odoo_path = re.sub(r"\{(\w+)\}", r"<string:\1>", route.path)

    def decorator(handler):
        @http.route(
            odoo_path,
            type="http",
            auth="none",
            methods=[route.method],
            csrf=False,
            save_session=False,
            readonly=False,
            emboux_api=True,
        )
        def endpoint(self, **kwargs):
            values = {name: kwargs[name] for name in route.params}
            return _serve(route, handler, self, values)

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return decorator


def _live_rules(env):
    """What the rules take from the database, as changes to the body fields
    they concern: the event types an endpoint may hear, the passwords'
    minimum length. The document publishes them as they stand."""
    minimum = env["emboux.mail.mailbox"]._emboux_password_min_length()
    return {
        "events": {"choices": tuple(env["emboux.mail.api"]._api_webhook_event_types())},
        "password": {"rules": {**PASSWORD.rules, "minLength": minimum}},
    }


def _documented(route, live):
    """``route`` with the ``live`` rules of its body fields."""
    body = {
        name: dataclasses.replace(spec, **live[name]) if name in live else spec
        for name, spec in route.body.items()
    }
    return dataclasses.replace(route, body=body)


class EmbouxApiController(http.Controller):
    # -- domains ---------------------------------------------------------------
    @api_route(
        Route(
            "POST",
            "/domains/",
            "Create a domain",
            body={
                "name": DOMAIN_NAME,
                "partner_ref": Field(
                    "str",
                    nullable=True,
                    description="Master only: the tenant that owns it.",
                ),
                "verified": Field(
                    "bool",
                    description="Master only: false to have the owner prove "
                    "control first (default true: the master vouches).",
                ),
                "verification_token": Field(
                    "str",
                    nullable=True,
                    pattern=r"[A-Za-z0-9_-]{16,64}",
                    description="Master only, with verified false: the token "
                    "of the TXT record to look for (a new one if absent).",
                ),
            },
            status=201,
            response="Domain",
            errors=(
                (400, "Domain already exists"),
                (400, "Domain is a public suffix"),
                (403, "Domain quota exceeded: U/A"),
            ),
            example={"name": "mycompany.com", "partner_ref": "partner_42"},
            answer={
                "id": 1,
                "name": "mycompany.com",
                "created_at": "2025-01-15T10:30:00",
            },
        )
    )
    def domain_create(self, api, caller, body, query):
        return api._api_domain_create(caller, body["name"], body)

    @api_route(
        Route(
            "GET",
            "/domains/",
            "List domains",
            query=PAGING,
            response="[DomainItem]",
            answer=[
                {
                    "id": 2,
                    "name": "example.org",
                    "created_at": "2025-01-16T08:00:00",
                    **DOMAIN_STATE,
                },
                {
                    "id": 1,
                    "name": "mycompany.com",
                    "created_at": "2025-01-15T10:30:00",
                    **DOMAIN_STATE,
                },
            ],
        )
    )
    def domain_list(self, api, caller, body, query):
        items, total = api._api_domain_list(
            caller, query.get("limit"), query.get("offset")
        )
        return RawJSON(items), total

    @api_route(
        Route(
            "DELETE",
            "/domains/{domain_name}",
            "Delete a domain with its mailboxes and aliases",
            status=204,
            errors=((404, "Domain not found"),),
        )
    )
    def domain_delete(self, api, caller, body, query, domain_name):
        api._api_domain_delete(caller, domain_name)

    @api_route(
        Route(
            "POST",
            "/domains/{domain_name}/register-subdomain",
            "Register a subdomain of a verified wildcard domain with the provider",
            response="Registration",
            errors=(
                (400, "Name is not a subdomain"),
                (400, "Parent domain is not a verified wildcard"),
                (404, "Domain not found"),
            ),
            answer={
                "name": "client1.example.com",
                "verification_token": "",
                "dkim_tokens": [],
                "verified": True,
                "dns_records": [],
                "provider": "mailgun",
            },
        )
    )
    def domain_register_subdomain(self, api, caller, body, query, domain_name):
        return api._api_register_subdomain(caller, domain_name)

    @api_route(
        Route(
            "POST",
            "/domains/{domain_name}/verify",
            "Look for the domain's ownership TXT record now",
            response="Verification",
            errors=((404, "Domain not found"),),
        )
    )
    def domain_verify(self, api, caller, body, query, domain_name):
        return api._api_verify(caller, domain_name)

    @api_route(
        Route(
            "PUT",
            "/domains/{domain_name}/parent",
            "Set a domain's parent and wildcard mode",
            master=True,
            body={
                "parent_domain": Field(
                    "str", nullable=True, syntax=DOMAIN, description="null clears it"
                ),
                "is_wildcard": Field("bool"),
            },
            response="Parent",
            errors=(
                (400, "<parent> is not a parent of <domain>"),
                (403, "Master token required"),
                (404, "Domain not found"),
                (404, "Parent domain not found"),
            ),
            example={"is_wildcard": True},
            answer={"name": "ganemo.com", "parent_domain": None, "is_wildcard": True},
        )
    )
    def domain_parent(self, api, caller, body, query, domain_name):
        return api._api_set_parent(caller, domain_name, body)

    @api_route(
        Route(
            "GET",
            "/domains/{domain_name}/dns-check",
            "Check the domain's MX, SPF, DKIM and DMARC records",
            response="DnsCheck",
            errors=((404, "Domain not found"),),
            answer={
                "name": "ganemo.com",
                "all_ok": True,
                "records": [
                    {
                        "record_type": "MX",
                        "name": "ganemo.com",
                        "expected": "mx1.emboux.com",
                        "status": "ok",
                    },
                    {
                        "record_type": "TXT",
                        "name": "ganemo.com",
                        "expected": "include:emboux.com",
                        "status": "ok",
                    },
                ],
            },
        )
    )
    def domain_dns_check(self, api, caller, body, query, domain_name):
        return api._api_dns_check(caller, domain_name)

    @api_route(
        Route(
            "PUT",
            "/domains/{domain_name}/owner",
            "Move a domain to another tenant, or orphan it",
            master=True,
            body={
                "partner_ref": Field(
                    "str", required=True, nullable=True, description="null orphans it"
                )
            },
            response="Owner",
            errors=(
                (400, "No active api_key for partner_ref=<value>"),
                (403, "Master token required"),
                (404, "Domain not found"),
            ),
            example={"partner_ref": "partner_42"},
            answer={
                "name": "client.example.com",
                "partner_ref": "partner_42",
                "previous_partner_ref": "partner_17",
            },
        )
    )
    def domain_owner(self, api, caller, body, query, domain_name):
        return api._api_set_owner(caller, domain_name, body["partner_ref"])

    @api_route(
        Route(
            "PUT",
            "/domains/{domain_name}/suspend",
            "Suspend a domain: mail refused, logins refused, nothing deleted",
            query={
                "reason": Field(
                    "str",
                    choices=REASONS,
                    description="Who suspends (master keys only; a tenant's "
                    "key always suspends as the customer)",
                )
            },
            response="Suspension",
            errors=((404, "Domain not found"),),
            answer={
                "name": "mycompany.com",
                "suspended": True,
                "message": "Domain suspended",
            },
        )
    )
    def domain_suspend(self, api, caller, body, query, domain_name):
        reason = query.get("reason") if caller.is_master else None
        return api._api_set_suspended(caller, domain_name, True, reason)

    @api_route(
        Route(
            "PUT",
            "/domains/{domain_name}/activate",
            "Activate a suspended domain",
            response="Suspension",
            errors=(
                (403, "Domain suspended by the operator"),
                (403, "Domain suspended for billing"),
                (404, "Domain not found"),
            ),
            answer={
                "name": "client.example.com",
                "suspended": False,
                "message": "Domain activated",
            },
        )
    )
    def domain_activate(self, api, caller, body, query, domain_name):
        return api._api_set_suspended(caller, domain_name, False)

    # -- outbound mail and transfer --------------------------------------------
    @api_route(
        Route(
            "GET",
            "/domains/{domain_name}/outbound",
            "Read a domain's sending limits, counters and reputation",
            response="Outbound",
            errors=((404, "Domain not found"),),
        )
    )
    def domain_outbound(self, api, caller, body, query, domain_name):
        return api._api_outbound(caller, domain_name)

    @api_route(
        Route(
            "PUT",
            "/domains/{domain_name}/outbound",
            "Change a domain's sending settings (a customer: only the two "
            "limits, within its plan)",
            body=OUTBOUND,
            response="Outbound",
            errors=(
                (403, "Master token required"),
                (403, "Outbound limit exceeds plan maximum (N)"),
                (404, "Domain not found"),
            ),
            example={"outbound_daily_limit": 500, "outbound_monthly_limit": 10000},
        )
    )
    def domain_outbound_set(self, api, caller, body, query, domain_name):
        return api._api_outbound(caller, domain_name, body)

    @api_route(
        Route(
            "POST",
            "/domains/{domain_name}/outbound/increment",
            "Check the sending limits and count one outgoing message",
            master=True,
            body={
                "recipients": Field("int", minimum=1, default=1),
                "size": Field("int", minimum=0, default=0, description="Bytes"),
            },
            body_required=False,
            response="OutboundIncrement",
            errors=((403, "Master token required"), (404, "Domain not found")),
        )
    )
    def domain_outbound_increment(self, api, caller, body, query, domain_name):
        return api._api_outbound_increment(
            caller, domain_name, body["recipients"], body["size"]
        )

    @api_route(
        Route(
            "GET",
            "/domains/{domain_name}/transfer",
            "Read a domain's monthly transfer ceiling and use",
            response="Transfer",
            errors=((404, "Domain not found"),),
            answer={
                "name": "mycompany.com",
                "transfer_monthly_mb": 10240,
                "transfer_used_mb": 0.0,
            },
        )
    )
    def domain_transfer(self, api, caller, body, query, domain_name):
        return api._api_transfer(caller, domain_name)

    @api_route(
        Route(
            "PUT",
            "/domains/{domain_name}/transfer",
            "Set a domain's monthly transfer ceiling",
            master=True,
            body={
                "transfer_monthly_mb": Field(
                    "int", required=True, minimum=0, description="MB; 0 = unlimited"
                )
            },
            response="Transfer",
            errors=((403, "Master token required"), (404, "Domain not found")),
        )
    )
    def domain_transfer_set(self, api, caller, body, query, domain_name):
        return api._api_transfer(caller, domain_name, body["transfer_monthly_mb"])

    # -- retention -------------------------------------------------------------
    @api_route(
        Route(
            "GET",
            "/domains/{domain_name}/retention",
            "Read how long a domain keeps its mail",
            response="Retention",
            errors=((404, "Domain not found"),),
            answer={"name": "mycompany.com", "retention_days": 60},
        )
    )
    def domain_retention(self, api, caller, body, query, domain_name):
        return api._api_retention(caller, domain_name)

    @api_route(
        Route(
            "PUT",
            "/domains/{domain_name}/retention",
            "Set how long a domain keeps its mail (a customer: within its plan)",
            body={
                "retention_days": Field(
                    "int",
                    required=True,
                    minimum=0,
                    description="Days; messages older than this are deleted "
                    "daily. 0 = keep forever (a customer only when its plan "
                    "has no longest retention).",
                )
            },
            response="Retention",
            errors=(
                (403, "Retention exceeds plan maximum (N days)"),
                (404, "Domain not found"),
            ),
            example={"retention_days": 60},
        )
    )
    def domain_retention_set(self, api, caller, body, query, domain_name):
        return api._api_retention(caller, domain_name, body["retention_days"])

    # -- mailboxes -------------------------------------------------------------
    @api_route(
        Route(
            "POST",
            "/users/",
            "Create a mailbox",
            body={"domain_name": DOMAIN_NAME, "email": ADDRESS, "password": PASSWORD},
            status=201,
            response="Mailbox",
            errors=(
                (400, "Email already exists"),
                (400, "Email does not belong to domain"),
                (403, "Domain suspended"),
                (403, "Mailbox quota exceeded for this domain"),
                (404, "Domain not found"),
            ),
            example={
                "domain_name": "mycompany.com",
                "email": "hello@mycompany.com",
                "password": "secure-pass-123",
            },
            answer={**MAILBOX, "created_at": "2025-01-15T10:31:00"},
        )
    )
    def mailbox_create(self, api, caller, body, query):
        return api._api_mailbox_create(
            caller, body["domain_name"], body["email"], body["password"]
        )

    @api_route(
        Route(
            "GET",
            "/users/",
            "List mailboxes",
            query=LIST_QUERY,
            response="[Mailbox]",
            answer=[{**MAILBOX, "created_at": "2025-01-15T10:31:00"}],
        )
    )
    def mailbox_list(self, api, caller, body, query):
        return api._api_mailbox_list(
            caller, query.get("domain_id"), query.get("limit"), query.get("offset")
        )

    @api_route(
        Route(
            "PUT",
            "/users/{email}",
            "Change a mailbox password",
            body={"password": PASSWORD},
            response="Message",
            errors=((403, "Domain suspended"), (404, "Mailbox not found")),
            example={"password": "new-secure-pass"},
            answer={"message": "Contraseña actualizada correctamente"},
        )
    )
    def mailbox_password(self, api, caller, body, query, email):
        return api._api_mailbox_password(caller, email, body["password"])

    @api_route(
        Route(
            "DELETE",
            "/users/{email}",
            "Delete a mailbox",
            status=204,
            errors=((404, "Mailbox not found"),),
        )
    )
    def mailbox_delete(self, api, caller, body, query, email):
        api._api_mailbox_delete(caller, email)

    @api_route(
        Route(
            "GET",
            "/users/{email}/quota",
            "Read a mailbox's storage quota and use",
            response="Quota",
            errors=((404, "Mailbox not found"),),
            answer={"email": "hello@mycompany.com", "quota_mb": 2048, "used_mb": 0.0},
        )
    )
    def mailbox_quota(self, api, caller, body, query, email):
        return api._api_mailbox_quota(caller, email)

    @api_route(
        Route(
            "PUT",
            "/users/{email}/quota",
            "Set a mailbox's storage quota",
            body={
                "quota_mb": Field(
                    "int",
                    required=True,
                    minimum=0,
                    description="MB; 0 = unlimited (master only). A customer "
                    "may set 1 to its plan's maximum mailbox size.",
                )
            },
            response="Quota",
            errors=(
                (403, "Storage quota exceeds plan maximum (N MB)"),
                (404, "Mailbox not found"),
            ),
            example={"quota_mb": 4096},
        )
    )
    def mailbox_quota_set(self, api, caller, body, query, email):
        return api._api_mailbox_quota(caller, email, body["quota_mb"])

    # -- aliases ---------------------------------------------------------------
    @api_route(
        Route(
            "POST",
            "/aliases/",
            "Create an alias (source @domain.tld for a catch-all)",
            body={
                "domain_name": DOMAIN_NAME,
                "source": Field(
                    "str", required=True, min_length=1, syntax=ALIAS_SOURCE
                ),
                "destination": ADDRESS,
            },
            status=201,
            response="Alias",
            errors=(
                (400, "Alias source already exists"),
                (400, "Email does not belong to domain"),
                (403, "Alias quota exceeded: U/A"),
                (403, "Domain suspended"),
                (404, "Domain not found"),
            ),
            example={
                "domain_name": "mycompany.com",
                "source": "info@mycompany.com",
                "destination": "hello@mycompany.com",
            },
            answer={**ALIAS, "created_at": "2025-01-15T10:35:00"},
        )
    )
    def alias_create(self, api, caller, body, query):
        return api._api_alias_create(
            caller, body["domain_name"], body["source"], body["destination"]
        )

    @api_route(
        Route(
            "GET",
            "/aliases/",
            "List aliases",
            query=LIST_QUERY,
            response="[Alias]",
            answer=[{**ALIAS, "created_at": "2025-01-15T10:35:00"}],
        )
    )
    def alias_list(self, api, caller, body, query):
        return api._api_alias_list(
            caller, query.get("domain_id"), query.get("limit"), query.get("offset")
        )

    @api_route(
        Route(
            "DELETE",
            "/aliases/{source}",
            "Delete an alias",
            status=204,
            errors=((404, "Alias not found"),),
        )
    )
    def alias_delete(self, api, caller, body, query, source):
        api._api_alias_delete(caller, source)

    # -- API keys --------------------------------------------------------------
    @api_route(
        Route(
            "POST",
            "/api-keys/",
            "Create a tenant's API key",
            master=True,
            body={"token": TOKEN, "partner_ref": TEXT, **QUOTAS},
            status=201,
            response="ApiKey",
            errors=((400, "API key already exists"), (403, "Master token required")),
            example={
                "token": API_KEY["token"],
                "partner_ref": "partner_42",
                "domains_allowed": 10,
                "mailboxes_per_domain": 5,
                "aliases_per_mailbox": 20,
                "expires_at": "2026-12-31T23:59:59Z",
            },
            answer=API_KEY,
        )
    )
    def api_key_create(self, api, caller, body, query):
        return api._api_key_create(body)

    @api_route(
        Route(
            "PUT",
            "/api-keys/{token}",
            "Update an API key's quotas, state or expiry",
            master=True,
            body=QUOTAS,
            response="ApiKey",
            errors=((403, "Master token required"), (404, "API key not found")),
            example={"domains_allowed": 20, "active": True},
            answer={**API_KEY, "domains_allowed": 20},
        )
    )
    def api_key_update(self, api, caller, body, query, token):
        return api._api_key_update(token, body)

    @api_route(
        Route(
            "DELETE",
            "/api-keys/{token}",
            "Delete an API key",
            master=True,
            status=204,
            errors=((403, "Master token required"), (404, "API key not found")),
        )
    )
    def api_key_delete(self, api, caller, body, query, token):
        api._api_key_delete(token)

    @api_route(
        Route(
            "GET",
            "/api-keys/{token}/usage",
            "Requests made with an API key",
            master=True,
            query={"since": Field("datetime", description=WHEN)},
            response="Usage",
            errors=((403, "Master token required"), (404, "API key not found")),
        )
    )
    def api_key_usage(self, api, caller, body, query, token):
        return api._api_key_usage(token, query.get("since"))

    # -- webhooks --------------------------------------------------------------
    @api_route(
        Route(
            "POST",
            "/webhooks/",
            "Create a webhook endpoint; its signing secret is answered only here",
            master=True,
            body={
                "url": URL,
                "events": EVENTS,
                "partner_ref": Field(
                    "str",
                    nullable=True,
                    description="The customer whose events it hears; null or "
                    "absent: every customer's.",
                ),
            },
            status=201,
            response="Webhook",
            example={
                "url": "https://hooks.example.com/emboux",
                "events": ["mailbox.created"],
                "partner_ref": "partner_42",
            },
            errors=(
                (403, "Master token required"),
                (404, "Customer not found"),
                (422, "At least one event type is required"),
                (422, "Unknown event type: <value>"),
                (422, "Webhook URL refused: <reason>"),
            ),
        )
    )
    def webhook_create(self, api, caller, body, query):
        return api._api_webhook_create(body)

    @api_route(
        Route(
            "GET",
            "/webhooks/",
            "List webhook endpoints",
            master=True,
            query=PAGING,
            response="[Webhook]",
            errors=((403, "Master token required"),),
        )
    )
    def webhook_list(self, api, caller, body, query):
        return api._api_webhook_list(caller, query.get("limit"), query.get("offset"))

    @api_route(
        Route(
            "GET",
            "/webhooks/{webhook_id}",
            "Read a webhook endpoint",
            master=True,
            response="Webhook",
            errors=((403, "Master token required"), (404, "Webhook not found")),
        )
    )
    def webhook_get(self, api, caller, body, query, webhook_id):
        return api._api_webhook_get(webhook_id)

    @api_route(
        Route(
            "PUT",
            "/webhooks/{webhook_id}",
            "Change a webhook endpoint, or rotate its signing secret",
            master=True,
            body={
                "url": dataclasses.replace(URL, required=False),
                "events": dataclasses.replace(EVENTS, required=False),
                "active": Field(
                    "bool", description="true also clears the disabled_reason"
                ),
                "rotate_secret": Field(
                    "bool",
                    description="true: a new secret, answered only here; the "
                    "previous one still signs for 24 hours.",
                ),
            },
            response="Webhook",
            errors=(
                (403, "Master token required"),
                (404, "Webhook not found"),
                (422, "At least one event type is required"),
                (422, "Unknown event type: <value>"),
                (422, "Webhook URL refused: <reason>"),
            ),
        )
    )
    def webhook_update(self, api, caller, body, query, webhook_id):
        return api._api_webhook_update(webhook_id, body)

    @api_route(
        Route(
            "DELETE",
            "/webhooks/{webhook_id}",
            "Delete a webhook endpoint",
            master=True,
            status=204,
            errors=((403, "Master token required"), (404, "Webhook not found")),
        )
    )
    def webhook_delete(self, api, caller, body, query, webhook_id):
        api._api_webhook_delete(webhook_id)

    # -- description -----------------------------------------------------------
    @http.route(
        "/openapi.json",
        type="http",
        auth="none",
        methods=["GET"],
        csrf=False,
        save_session=False,
    )
    def openapi_document(self):
        live = _live_rules(request.env(su=True))
        document = openapi.build(
            [_documented(route, live) for route in ROUTES],
            SCHEMAS,
            "EmBoux API (Odoo)",
            release.major_version,
            path_params=PATH_PARAMS,
            optional=OPTIONAL_ANSWERS,
        )
        return json_response(document)
