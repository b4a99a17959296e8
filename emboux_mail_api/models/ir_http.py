from werkzeug.exceptions import RequestEntityTooLarge

from odoo import models
from odoo.http import request

from ..controllers.responses import error_response

MAX_BODY = 1024 * 1024


class IrHttp(models.AbstractModel):
    _inherit = "ir.http"

    @classmethod
    def _pre_dispatch(cls, rule, args):
        """Keep the raw body of REST API requests before Odoo parses forms.

        Werkzeug consumes a form-encoded body when ``request.params`` is
        built (a ``curl -d`` without a JSON content type), so the JSON text
        must be cached first; bodies over 1 MiB are refused here, unread.
        """
        super()._pre_dispatch(rule, args)
        if not rule.endpoint.routing.get("emboux_api"):
            return
        httprequest = request.httprequest
        httprequest.max_content_length = MAX_BODY
        try:
            data = httprequest.get_data(cache=True)
        except RequestEntityTooLarge:
            data = None
        if data is None or len(data) > MAX_BODY:
            raise error_response(413, "Request body too large")
