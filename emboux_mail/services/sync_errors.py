"""How an upstream refusal becomes the local rule's own exception."""

from ..exceptions import (
    EmbouxNotFound,
    EmbouxQuotaError,
    EmbouxUserError,
    EmbouxValidationError,
)
from . import emboux_client as ec
from .redaction import redact

# no answer, or the upstream failed: try again later
TRANSIENT = (ec.EmbouxUnavailable, ec.EmbouxServerError)


def local_error(env, error):
    """The exception a local rule raises for the same refusal, its message
    being the upstream's ``detail`` (tokens masked), so that a user, the
    portal and the REST API see what the upstream said."""
    detail = error.detail if error.detail is not None else str(error)
    if not isinstance(detail, str):  # 422: FastAPI's list of errors
        detail = "; ".join(
            str(item.get("msg", item)) if isinstance(item, dict) else str(item)
            for item in detail
        )
    detail = redact(detail)
    message = env._("Upstream EmBoux API: %(detail)s", detail=detail)
    if isinstance(error, ec.EmbouxForbidden) and error.quota_exceeded:
        return EmbouxQuotaError(message, detail)
    if isinstance(error, ec.EmbouxNotFound):
        return EmbouxNotFound(message, detail)
    if isinstance(error, ec.EmbouxValidation):
        return EmbouxValidationError(message, detail=detail, status=422)
    if isinstance(error, ec.EmbouxBadRequest):
        return EmbouxValidationError(message, detail=detail)
    return EmbouxUserError(message, detail=detail, status=error.status or 400)
