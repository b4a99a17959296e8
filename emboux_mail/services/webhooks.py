"""Lifecycle webhooks as the Standard Webhooks specification has them: a
signed POST per event, the same ``webhook-id`` on every attempt, retried on
a growing schedule. No Odoo import: the models decide what to send and when.
"""

import base64
import ipaddress
import json
import random
import secrets
import socket
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
from standardwebhooks import Webhook

# the specification's schedule: at once, then 5 s, 5 min, 30 min, 2 h, 5 h,
# 10 h, 10 h (seconds after the previous attempt)
RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
JITTER = 0.2
READ_TIMEOUT = 15
ANSWER_KEPT = 500  # characters of the receiver's answer kept in the log
USER_AGENT = "EmBoux-Webhooks/1.0"


class UnsafeAddress(ValueError):
    """The endpoint's host is not a public address (or does not resolve)."""


def new_secret():
    """A signing secret in the specification's format: ``whsec_`` and 24
    random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def new_message_id():
    return "msg_" + secrets.token_hex(16)


def body(event_type, timestamp, data):
    """The JSON an event carries, the same bytes on every attempt."""
    return json.dumps(
        {"type": event_type, "timestamp": timestamp, "data": data},
        separators=(",", ":"),
        sort_keys=True,
    )


def signed_headers(message_id, signing_secrets, payload, now=None):
    """The three signed headers; one ``v1,`` signature per secret, so that a
    receiver still holding the previous secret during a rotation verifies."""
    now = now or datetime.now(UTC)
    signatures = " ".join(
        Webhook(secret).sign(message_id, now, payload) for secret in signing_secrets
    )
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def check_url(url, allow_private=False):
    """Refuse what is not http(s) to a public address: a webhook must not
    reach the server's own network (loopback, private, link-local, ...)."""
    try:
        parts = urlsplit(url or "")
        hostname = parts.hostname
    except ValueError as error:  # such as an unclosed IPv6 bracket
        raise UnsafeAddress("not an http(s) URL") from error
    if parts.scheme not in ("http", "https") or not hostname:
        raise UnsafeAddress("not an http(s) URL")
    if allow_private:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError) as error:
        raise UnsafeAddress(f"{parts.hostname} does not resolve") from error
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global or address.is_multicast:
            raise UnsafeAddress(f"{parts.hostname} is a non-public address")


def retry_delay(attempts, schedule=RETRY_SCHEDULE, jitter=JITTER):
    """Seconds before the attempt after ``attempts`` failed ones, or None
    when the schedule is spent."""
    if attempts > len(schedule):
        return None
    delay = schedule[attempts - 1]
    return delay * (1 + random.uniform(-jitter, jitter))  # noqa: S311


def post(url, headers, payload, allow_private=False, timeout=READ_TIMEOUT):
    """One attempt: ``(status or None, milliseconds, answer or error)``.
    Redirects are not followed: a 3xx is a failed attempt."""
    started = time.monotonic()
    try:
        check_url(url, allow_private)
        response = requests.post(
            url,
            data=payload.encode(),
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
        )
    except (requests.RequestException, UnsafeAddress) as error:
        elapsed = int((time.monotonic() - started) * 1000)
        return None, elapsed, f"{type(error).__name__}: {error}"[:ANSWER_KEPT]
    elapsed = int((time.monotonic() - started) * 1000)
    return response.status_code, elapsed, response.text[:ANSWER_KEPT]
