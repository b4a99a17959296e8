"""Framework-free parts of the REST API: request validation in FastAPI's
error shape and the OpenAPI document. No Odoo import here."""
