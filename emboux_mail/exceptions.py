"""Errors of the mail-hosting rules.

Each carries, beside the translated message shown to Odoo users (which names
the field and the value), the HTTP ``status`` and the exact English
``detail`` that the EmBoux REST API answers for the same refusal, so that the
API and the UI share one rule and one exception. Their ``context`` names
the core class they extend, so the web client shows them in its usual
warning dialog rather than as an unexpected error.
"""

from odoo.exceptions import UserError, ValidationError


class EmbouxValidationError(ValidationError):
    """Bad input: an invalid name (422), a duplicate or a mismatch (400).
    ``field`` names the input at fault, for the API's 422 location."""

    def __init__(self, message, detail=None, status=400, field=None):
        super().__init__(message)
        self.detail = detail or message
        self.status = status
        self.field = field
        self.context = {"exception_class": "odoo.exceptions.ValidationError"}


class EmbouxQuotaError(EmbouxValidationError):
    """A quota would be exceeded (403)."""

    def __init__(self, message, detail):
        super().__init__(message, detail=detail, status=403)


class EmbouxUserError(UserError):
    """A refused action (400 unless said otherwise)."""

    def __init__(self, message, detail=None, status=400):
        super().__init__(message)
        self.detail = detail or message
        self.status = status
        self.context = {"exception_class": "odoo.exceptions.UserError"}


class EmbouxNotFound(EmbouxUserError):
    """The resource does not exist, or is not the caller's (404)."""

    def __init__(self, message, detail):
        super().__init__(message, detail=detail, status=404)


class EmbouxForbidden(EmbouxUserError):
    """An authentication or role failure (403)."""

    def __init__(self, message, detail):
        super().__init__(message, detail=detail, status=403)


class EmbouxTooManyRequests(EmbouxUserError):
    """Throttled (429): try again after ``retry_after`` seconds."""

    def __init__(self, message, detail, retry_after):
        super().__init__(message, detail=detail, status=429)
        self.retry_after = retry_after
