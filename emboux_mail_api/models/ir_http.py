import functools
import re

from werkzeug.exceptions import HTTPException, MethodNotAllowed

from odoo import http, models
from odoo.exceptions import AccessDenied, UserError
from odoo.http import Response, request
from odoo.tools import SQL, config

from ..controllers.main import ROUTES, error_status
from ..controllers.responses import error_response, json_response

MAX_BODY = 1024 * 1024


def served_databases(cr, host):
    """The databases this server serves for ``host`` (db_name/dbfilter),
    asked of PostgreSQL each time: a list kept in a process would differ
    between workers and nodes while databases come and go.

    The catalog is read on the request's own cursor (``cr``), with the query
    Odoo's ``list_dbs`` runs: that one opens a new connection to
    ``postgres`` at every call (Odoo never pools those), which costs an API
    request more than the rest of its authentication. A filter naming one
    database, the cursor's own, needs no catalog at all."""
    if config["db_name"] and not config["dbfilter"]:
        names = sorted(db.strip() for db in config["db_name"].split(","))
    elif _names_only(config["dbfilter"], cr.dbname):
        return [cr.dbname]
    else:
        cr.execute(
            SQL(
                "SELECT datname FROM pg_database WHERE datdba = (SELECT usesysid"
                " FROM pg_user WHERE usename = current_user) AND NOT datistemplate"
                " AND datallowconn AND datname NOT IN %s ORDER BY datname",
                tuple({"postgres", config["db_template"]}),
            )
        )
        names = [name for (name,) in cr.fetchall()]
    return http.db_filter(names, host)


def _names_only(dbfilter, name):
    """True when ``dbfilter`` is ``^name$`` for ``name`` (as ``./setup/run``
    deploys it): a regular expression no other database name matches."""
    return dbfilter.removeprefix("^") == re.escape(name) + "$"


@functools.cache
def _api_prefixes():
    """``/domains/``, ``/users/``...: the collections the API's routes live
    under (known once the controllers are loaded)."""
    return tuple({"/" + route.path.strip("/").split("/")[0] + "/" for route in ROUTES})


def is_api_path(path):
    """True under one of the API's collections, where an unknown path or a
    wrong method answers the API's JSON errors, as FastAPI's do."""
    return path.startswith(_api_prefixes())


def read_body(httprequest, limit=MAX_BODY):
    """The request body, or None when it is longer than ``limit``: read a
    chunk at a time and never past ``limit + 1`` bytes, so that a chunked
    body (which has no Content-Length) cannot fill the memory either.

    The body is kept where Werkzeug's ``get_data`` finds it: Odoo replays a
    request after a serialization failure, and the stream is read by then."""
    cached = getattr(httprequest, "_cached_data", None)
    if cached is not None:
        return cached
    if (httprequest.content_length or 0) > limit:
        return None
    stream = httprequest.stream
    chunks, size = [], 0
    while size <= limit:
        chunk = stream.read(min(65536, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        return None
    httprequest._cached_data = b"".join(chunks)
    return httprequest._cached_data


class IrHttp(models.AbstractModel):
    _inherit = "ir.http"

    @classmethod
    def _match(cls, path_info):
        """A wrong method on an API path answers JSON 405 with ``Allow``,
        not Werkzeug's HTML page."""
        try:
            return super()._match(path_info)
        except MethodNotAllowed as error:
            if not is_api_path(path_info):
                raise
            allow = ", ".join(sorted(error.valid_methods or ()))
            raise error_response(405, "Method Not Allowed", {"Allow": allow}) from error

    @classmethod
    def _serve_fallback(cls):
        """An unknown path under the API answers JSON 404, not a web page."""
        response = super()._serve_fallback()
        if response or not is_api_path(request.httprequest.path):
            return response
        return json_response({"detail": "Not Found"}, 404)

    @classmethod
    def _handle_error(cls, exception):
        """An error that no route turned into an answer (a constraint met
        by a concurrent change, a bug) answers JSON under the API's
        collections as well: a refusal as a route's own, anything else as
        500 without its details (Odoo logs them)."""
        if isinstance(exception, HTTPException) or not is_api_path(
            request.httprequest.path
        ):
            return super()._handle_error(exception)
        if isinstance(exception, UserError | AccessDenied):
            return error_response(*error_status(exception))
        return error_response(500, "Internal Server Error")

    @classmethod
    def _pre_dispatch(cls, rule, args):
        """Refuse to answer from an ambiguous database, and keep the raw body
        of REST API requests before Odoo parses forms.

        Werkzeug consumes a form-encoded body when ``request.params`` is
        built (a ``curl -d`` without a JSON content type), so the JSON text
        is read first, and cached where ``get_data`` finds it; bodies over
        1 MiB are refused here without being read whole.
        """
        super()._pre_dispatch(rule, args)
        if not rule.endpoint.routing.get("emboux_api"):
            return
        httprequest = request.httprequest
        if httprequest.method == "OPTIONS":
            # Odoo lets every route answer OPTIONS (for CORS preflights),
            # which would run the route: it only tells what the path allows
            adapter = rule.map.bind_to_environ(httprequest.environ)
            allow = ", ".join(sorted(adapter.allowed_methods()))
            raise HTTPException(response=Response(status=204, headers={"Allow": allow}))
        # the API answers from the one database this URL serves, never from
        # whichever database a session cookie happens to name
        if served_databases(request.env.cr, httprequest.host) != [request.db]:
            raise error_response(
                503, "The API needs one database per URL: set db_name or dbfilter"
            )
        # Odoo's request wrapper exposes neither the stream nor the cache
        # that Werkzeug's ``get_data`` reads: both live on the request it wraps
        if read_body(httprequest._HTTPRequest__wrapped) is None:
            raise error_response(413, "Request body too large")
