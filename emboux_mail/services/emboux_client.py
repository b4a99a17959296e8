"""A client of the EmBoux REST API (or of ``emboux_mail_api``, which serves
the same contract), for the sync with an upstream EmBoux and for scripts.

Framework-free on purpose: only the standard library and ``requests``, so it
runs and is tested without Odoo.

Every answer other than a 2xx becomes a typed ``EmbouxApiError`` carrying the
HTTP ``status`` and the API's ``detail``, so callers branch on classes instead
of parsing texts. Transient failures are retried only when a second try
cannot do anything twice: idempotent methods (GET, PUT, DELETE) on 502/503/504
and on network errors, and any method when the connection itself failed (the
server never saw the request). A POST that may have reached the server is
never replayed: it could create a resource twice. Error texts never carry
a token: ``/api-keys/{token}`` paths are masked in them.
"""

import datetime
import random
import time
from typing import NamedTuple
from urllib.parse import quote

import requests

# urllib3 ships with requests; requests re-exports it under requests.packages
from requests.packages.urllib3.exceptions import ConnectTimeoutError

from .redaction import redact

DEFAULT_TIMEOUT = (5, 30)
IDEMPOTENT = frozenset({"GET", "PUT", "DELETE"})
# a proxy or the server said "not now": a later try of the same call may work
RETRY_STATUSES = frozenset({502, 503, 504})
# failures of the network, not answers of the API
NETWORK_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
QUOTA_TEXTS = (
    "Domain quota exceeded",
    "Mailbox quota exceeded",
    "Alias quota exceeded",
)


class _Unset:
    """Marks an argument that was not given, where ``None`` means JSON null
    (clear the parent, never expire)."""

    def __repr__(self):
        return "UNSET"


UNSET = _Unset()


class EmbouxApiError(Exception):
    """An API call that failed; ``status`` is None when no answer came."""

    def __init__(self, message, status=None, detail=None, body=None):
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.body = body


class EmbouxBadRequest(EmbouxApiError):
    """400: the request conflicts with the data (duplicate, wrong domain)."""


class EmbouxForbidden(EmbouxApiError):
    """403: authentication, role (``Master token required``) or quota."""

    @property
    def quota_exceeded(self):
        """True when a tenant quota refused the call, not the credentials:
        the caller should upgrade the plan rather than fix its token."""
        return isinstance(self.detail, str) and self.detail.startswith(QUOTA_TEXTS)


class EmbouxNotFound(EmbouxApiError):
    """404: unknown resource, or another tenant's (the API does not tell)."""


class EmbouxValidation(EmbouxApiError):
    """422: ``detail`` is FastAPI's list of ``{loc, msg, type}`` errors."""


class EmbouxServerError(EmbouxApiError):
    """5xx: the server failed (after the retries allowed for the call)."""


class EmbouxUnavailable(EmbouxApiError):
    """No answer: connection refused or reset, or a timeout."""


ERRORS_BY_STATUS = {
    400: EmbouxBadRequest,
    403: EmbouxForbidden,
    404: EmbouxNotFound,
    422: EmbouxValidation,
}


class Page(NamedTuple):
    """One page of a list and the total number of items on all pages."""

    items: list
    total: int


def _never_sent(error):
    """True when the connection could not be made, so the server cannot
    have seen the request and even a POST may be tried again."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    # refused connection or unknown host: a MaxRetryError whose reason is
    # urllib3's connect error (requests has no class of its own for it)
    reason = getattr(error.args[0] if error.args else None, "reason", None)
    return isinstance(reason, ConnectTimeoutError)


def _stamp(value):
    """An ISO 8601 text for a datetime; anything else passes unchanged."""
    if isinstance(value, datetime.datetime):
        return value.isoformat(timespec="seconds")
    return value


def _given(missing, **values):
    """The fields of a body or query whose value is not ``missing``."""
    return {name: value for name, value in values.items() if value is not missing}


def _segment(value):
    """``value`` quoted as one path segment (a ``/`` in it too); ``@`` is
    kept readable, the API accepts it as is."""
    return quote(str(value), safe="@")


class EmbouxClient:
    """Calls one EmBoux API at ``base_url`` with one Bearer ``token``.

    ``timeout`` is requests' ``(connect, read)`` in seconds; ``retries`` is
    how many times a retryable failure is tried again, after sleeping
    ``backoff * 2**n`` seconds plus up to half as much jitter (``sleep`` is
    injectable for tests). ``unanswered`` counts the tries that may have
    reached the server without its answer reaching us: what they change
    there may still land later.
    """

    def __init__(
        self,
        base_url,
        token,
        timeout=DEFAULT_TIMEOUT,
        retries=3,
        backoff=0.2,
        sleep=time.sleep,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self.unanswered = 0
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.headers["Accept"] = "application/json"

    def close(self):
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # -- transport -------------------------------------------------------------
    def _send(self, method, path, body=None, params=None):
        """The response of the last try; raises EmbouxUnavailable when no
        answer came."""
        url = self.base_url + path
        idempotent = method in IDEMPOTENT
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.session.request(
                    method, url, json=body, params=params, timeout=self.timeout
                )
            except NETWORK_ERRORS as exc:
                never_sent = _never_sent(exc)
                self.unanswered += not never_sent
                if last or not (idempotent or never_sent):
                    message = f"{method} {path}: no answer from {self.base_url}: {exc}"
                    raise EmbouxUnavailable(redact(message)) from exc
            else:
                if last or not idempotent or response.status_code not in RETRY_STATUSES:
                    return response
            delay = self.backoff * 2**attempt
            self._sleep(delay + random.uniform(0, delay / 2))

    def _call(self, method, path, body=None, params=None):
        """The successful response of a call; raises the typed error of
        any other status."""
        response = self._send(method, path, body, params)
        if 200 <= response.status_code < 300:
            return response
        try:
            content = response.json()
        except ValueError:
            content = response.text
        detail = content.get("detail") if isinstance(content, dict) else content
        status = response.status_code
        error = ERRORS_BY_STATUS.get(status)
        if error is None:
            error = EmbouxServerError if status >= 500 else EmbouxApiError
        message = redact(f"{method} {path}: {status} {detail}")
        raise error(message, status, detail, content)

    def _json(self, method, path, body=None, params=None):
        """The decoded JSON of a successful call, None for a 204."""
        response = self._call(method, path, body, params)
        if response.status_code == 204:
            return None
        return self._decode(method, path, response)

    def _page(self, path, **params):
        """A list and its total; a server that does not page (no
        ``X-Total-Count``) answered everything."""
        response = self._call("GET", path, params=_given(None, **params))
        items = self._decode("GET", path, response)
        return Page(items, int(response.headers.get("X-Total-Count", len(items))))

    @staticmethod
    def _decode(method, path, response):
        try:
            return response.json()
        except ValueError as exc:
            raise EmbouxApiError(
                redact(
                    f"{method} {path}: {response.status_code} answered a body "
                    f"that is not JSON: {response.text[:200]!r}"
                ),
                response.status_code,
                body=response.text,
            ) from exc

    # -- domains ---------------------------------------------------------------
    def create_domain(
        self, name, partner_ref=None, verified=None, verification_token=None
    ):
        """``partner_ref`` assigns the domain to a tenant (master token only;
        a customer token's own tenant always wins). A master vouches for the
        name unless ``verified`` is false; then the owner proves control with
        the TXT record of ``verification_token`` (the upstream's own if
        None)."""
        body = _given(
            None,
            name=name,
            partner_ref=partner_ref,
            verified=verified,
            verification_token=verification_token,
        )
        return self._json("POST", "/domains/", body)

    def verify_domain(self, name):
        """Looks for the domain's ownership TXT record now; the answer says
        whether it is verified and, if not, the record to publish."""
        return self._json("POST", f"/domains/{_segment(name)}/verify")

    def list_domains(self, limit=None, offset=None):
        return self._page("/domains/", limit=limit, offset=offset)

    def delete_domain(self, name):
        """Deletes the domain with its mailboxes and aliases."""
        return self._json("DELETE", f"/domains/{_segment(name)}")

    def register_subdomain(self, name):
        """Registers a subdomain of a verified wildcard domain with the
        outbound provider, so that it sends signed with the parent's DKIM."""
        return self._json("POST", f"/domains/{_segment(name)}/register-subdomain")

    def set_parent(self, name, parent_domain=UNSET, is_wildcard=UNSET):
        """Master only; ``parent_domain=None`` detaches the domain."""
        body = _given(UNSET, parent_domain=parent_domain, is_wildcard=is_wildcard)
        return self._json("PUT", f"/domains/{_segment(name)}/parent", body)

    def dns_check(self, name):
        return self._json("GET", f"/domains/{_segment(name)}/dns-check")

    def get_outbound(self, name):
        return self._json("GET", f"/domains/{_segment(name)}/outbound")

    def set_outbound(self, name, values):
        """A partial update of the sending settings; a customer token may
        send only the two limits."""
        return self._json("PUT", f"/domains/{_segment(name)}/outbound", values)

    def count_outbound(self, name, recipients=1, size=0):
        """Master only: count one outgoing message as the policy service
        does; the answer says whether it may go."""
        body = {"recipients": recipients, "size": size}
        return self._json("POST", f"/domains/{_segment(name)}/outbound/increment", body)

    def get_transfer(self, name):
        return self._json("GET", f"/domains/{_segment(name)}/transfer")

    def set_transfer(self, name, transfer_monthly_mb):
        """Master only: the monthly transfer in MB (0: unlimited)."""
        body = {"transfer_monthly_mb": transfer_monthly_mb}
        return self._json("PUT", f"/domains/{_segment(name)}/transfer", body)

    def get_retention(self, name):
        return self._json("GET", f"/domains/{_segment(name)}/retention")

    def set_retention(self, name, retention_days):
        """Delete the domain's messages older than ``retention_days`` (0:
        keep them forever)."""
        body = {"retention_days": retention_days}
        return self._json("PUT", f"/domains/{_segment(name)}/retention", body)

    def set_owner(self, name, partner_ref):
        """Master only; ``partner_ref=None`` orphans the domain."""
        body = {"partner_ref": partner_ref}
        return self._json("PUT", f"/domains/{_segment(name)}/owner", body)

    def suspend(self, name, reason=None):
        """``reason``: operator, billing or customer (a master token's)."""
        params = {"reason": reason} if reason else None
        return self._json("PUT", f"/domains/{_segment(name)}/suspend", params=params)

    def activate(self, name):
        return self._json("PUT", f"/domains/{_segment(name)}/activate")

    # -- mailboxes -------------------------------------------------------------
    def create_mailbox(self, domain_name, email, password):
        body = {"domain_name": domain_name, "email": email, "password": password}
        return self._json("POST", "/users/", body)

    def list_mailboxes(self, domain_id=None, limit=None, offset=None):
        return self._page("/users/", domain_id=domain_id, limit=limit, offset=offset)

    def set_password(self, email, password):
        return self._json("PUT", f"/users/{_segment(email)}", {"password": password})

    def delete_mailbox(self, email):
        return self._json("DELETE", f"/users/{_segment(email)}")

    def get_quota(self, email):
        return self._json("GET", f"/users/{_segment(email)}/quota")

    def set_quota(self, email, quota_mb):
        body = {"quota_mb": quota_mb}
        return self._json("PUT", f"/users/{_segment(email)}/quota", body)

    # -- aliases ---------------------------------------------------------------
    def create_alias(self, domain_name, source, destination):
        """``source`` ``@domain.tld`` makes a catch-all."""
        body = {
            "domain_name": domain_name,
            "source": source,
            "destination": destination,
        }
        return self._json("POST", "/aliases/", body)

    def list_aliases(self, domain_id=None, limit=None, offset=None):
        return self._page("/aliases/", domain_id=domain_id, limit=limit, offset=offset)

    def delete_alias(self, source):
        return self._json("DELETE", f"/aliases/{_segment(source)}")

    # -- API keys (master only) ------------------------------------------------
    def create_api_key(
        self,
        token,
        partner_ref,
        domains_allowed=None,
        mailboxes_per_domain=None,
        aliases_per_mailbox=None,
        active=None,
        expires_at=None,
    ):
        """The caller chooses ``token``; quotas, ``active`` and
        ``expires_at`` left None take the server's defaults."""
        body = _given(
            None,
            token=token,
            partner_ref=partner_ref,
            domains_allowed=domains_allowed,
            mailboxes_per_domain=mailboxes_per_domain,
            aliases_per_mailbox=aliases_per_mailbox,
            active=active,
            expires_at=_stamp(expires_at),
        )
        return self._json("POST", "/api-keys/", body)

    def update_api_key(
        self,
        token,
        domains_allowed=UNSET,
        mailboxes_per_domain=UNSET,
        aliases_per_mailbox=UNSET,
        active=UNSET,
        expires_at=UNSET,
    ):
        """Changes only the fields given; ``expires_at=None`` removes the
        expiry, ``active=False`` revokes the key without deleting it."""
        body = _given(
            UNSET,
            domains_allowed=domains_allowed,
            mailboxes_per_domain=mailboxes_per_domain,
            aliases_per_mailbox=aliases_per_mailbox,
            active=active,
            expires_at=_stamp(expires_at),
        )
        return self._json("PUT", f"/api-keys/{_segment(token)}", body)

    def delete_api_key(self, token):
        return self._json("DELETE", f"/api-keys/{_segment(token)}")

    def api_key_usage(self, token, since=None):
        """Requests made with the key, by route, since ``since`` if given."""
        params = _given(None, since=_stamp(since))
        return self._json("GET", f"/api-keys/{_segment(token)}/usage", params=params)

    # -- description -----------------------------------------------------------
    def create_webhook(self, url, events, partner_ref=None):
        """Master only: an endpoint hearing ``events`` of the tenant
        ``partner_ref`` (None: of every tenant); the answer holds its
        signing secret, never shown again."""
        body = {"url": url, "events": list(events), "partner_ref": partner_ref}
        return self._json("POST", "/webhooks/", body)

    def list_webhooks(self, limit=None, offset=None):
        return self._page("/webhooks/", limit=limit, offset=offset)

    def get_webhook(self, webhook_id):
        return self._json("GET", f"/webhooks/{_segment(webhook_id)}")

    def update_webhook(
        self, webhook_id, url=UNSET, events=UNSET, active=UNSET, rotate_secret=UNSET
    ):
        """Changes only the fields given; ``rotate_secret=True`` answers a
        new secret once (the previous one still signs for a day)."""
        body = _given(
            UNSET, url=url, events=events, active=active, rotate_secret=rotate_secret
        )
        return self._json("PUT", f"/webhooks/{_segment(webhook_id)}", body)

    def delete_webhook(self, webhook_id):
        return self._json("DELETE", f"/webhooks/{_segment(webhook_id)}")

    def openapi(self):
        return self._json("GET", "/openapi.json")
