"""Masking of API tokens in texts that outlive a request: error messages
stored on records, and log lines.

The EmBoux API addresses a key by its token (``/api-keys/{token}``), so a
request path, a client's error text or an access log line carries one, as
does an ``Authorization: Bearer`` header. Only the first characters are
kept, enough to tell keys apart (``/api-keys/emb_…``).

Importing this module adds ``RedactingFilter`` to the root logger's
handlers: every record that propagates there (werkzeug's access log,
urllib3, Odoo's own loggers) is masked before any handler writes it.
"""

import logging
import re

SHOWN = 4
ELLIPSIS = "…"
# a path segment ends at / ? # a space or a quote; a colon just before
# one of them ("DELETE /api-keys/<token>: 404") is the text's, not the token's
API_KEY_PATH_RE = re.compile(r"(/api-keys/)([^/?#\s\"']+?)(?=:?(?:[/?#\s\"']|$))")
BEARER_RE = re.compile(r"(\bBearer\s+)([^\s\"',;]+)", re.IGNORECASE)


def _mask(match):
    prefix, token = match.groups()
    if token.endswith(ELLIPSIS):  # masked already
        return match.group(0)
    return prefix + token[:SHOWN] + ELLIPSIS


def redact(text):
    """``text`` with every token of a ``/api-keys/`` path segment or of a
    ``Bearer`` credential cut to its first characters."""
    if not text:
        return text
    return BEARER_RE.sub(_mask, API_KEY_PATH_RE.sub(_mask, str(text)))


class RedactingFilter(logging.Filter):
    """Masks tokens in a record's message (formatted with its arguments)
    and in its traceback, before any handler writes it."""

    def filter(self, record):
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # a malformed logging call: the handler reports it
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_log_filter(logger=None):
    """Add the filter to each handler of ``logger`` (the root logger), once."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


install_log_filter()
