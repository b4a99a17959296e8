"""JSON responses of the REST API, and errors that roll the request back."""

import json

from werkzeug.exceptions import HTTPException

from odoo.http import Response


class RawJSON(str):
    """JSON text already written (by PostgreSQL), answered as it is."""


def json_response(data, status=200, headers=None):
    if data is None or isinstance(data, RawJSON):
        body = data or ""
    else:
        body = json.dumps(data, ensure_ascii=False)
    response = Response(body, status=status, headers=headers or {})
    if data is not None:
        response.mimetype = "application/json"
    return response


def json_abort(status, data):
    """An exception carrying a JSON response: raising it (rather than
    returning an error) makes Odoo roll back what the request wrote."""
    return HTTPException(response=json_response(data, status))


def error_response(status, detail, headers=None):
    return HTTPException(response=json_response({"detail": detail}, status, headers))
