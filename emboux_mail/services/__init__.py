"""Framework-free helpers of emboux_mail: no Odoo import in this package, so
they can be unit-tested alone and reused by the REST API and the sync."""
