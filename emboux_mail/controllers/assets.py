"""Asset bundles are served from the primary database, replica or not."""

from odoo import http

from odoo.addons.web.controllers.binary import Binary


def _on_primary(_controller):
    """Odoo 18 generates a missing bundle with a cursor of the primary, then
    reads it back with the request's own cursor: on a read replica that has
    not replayed it yet, the request answers 400 and the page loads without
    its scripts or styles. Browsers keep a bundle for a year (its URL
    changes with its content), so the primary serves each one about once
    per browser."""
    return False


class EmbouxAssets(Binary):
    @http.route(readonly=_on_primary)
    def content_assets(self, *args, **kwargs):
        return super().content_assets(*args, **kwargs)
