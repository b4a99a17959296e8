"""The customer portal's webhook endpoints."""

from odoo.addons.portal.controllers.portal import CustomerPortal


class EmbouxMailWebhookPortal(CustomerPortal):
    """A customer's own endpoints, which hear its own events only."""
