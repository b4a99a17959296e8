import time

from werkzeug.exceptions import RequestEntityTooLarge

from odoo import http, models
from odoo.http import request

from ..controllers.responses import error_response

MAX_BODY = 1024 * 1024
DB_LIST_SECONDS = 30
# {host: (valid until, databases)}: the server's own database listing, kept
# briefly so that each API request does not open a connection to list them
_databases = {}


def served_databases(host):
    """The databases this server serves for ``host`` (db_name/dbfilter)."""
    now = time.monotonic()
    cached = _databases.get(host)
    if not cached or cached[0] < now:
        cached = _databases[host] = (now + DB_LIST_SECONDS, http.db_list(True, host))
    return cached[1]


class IrHttp(models.AbstractModel):
    _inherit = "ir.http"

    @classmethod
    def _pre_dispatch(cls, rule, args):
        """Refuse to answer from an ambiguous database, and keep the raw body
        of REST API requests before Odoo parses forms.

        Werkzeug consumes a form-encoded body when ``request.params`` is
        built (a ``curl -d`` without a JSON content type), so the JSON text
        must be cached first; bodies over 1 MiB are refused here, unread.
        """
        super()._pre_dispatch(rule, args)
        if not rule.endpoint.routing.get("emboux_api"):
            return
        httprequest = request.httprequest
        # the API answers from the one database this URL serves, never from
        # whichever database a session cookie happens to name
        if served_databases(httprequest.host) != [request.db]:
            raise error_response(
                503, "The API needs one database per URL: set db_name or dbfilter"
            )
        httprequest.max_content_length = MAX_BODY
        try:
            data = httprequest.get_data(cache=True)
        except RequestEntityTooLarge:
            data = None
        if data is None or len(data) > MAX_BODY:
            raise error_response(413, "Request body too large")
