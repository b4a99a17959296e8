# Copyright 2026 EmBoux
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
{
    "name": "EmBoux Mail Hosting REST API",
    "summary": "Serve the EmBoux REST API from this database: Odoo as the "
    "mail-hosting backend",
    "version": "18.0.1.6.0",
    "category": "Productivity",
    "website": "https://emboux.com",
    "author": "EmBoux",
    "license": "AGPL-3",
    "development_status": "Alpha",
    "installable": True,
    "depends": ["emboux_mail"],
    "external_dependencies": {"python": ["requests", "dnspython", "passlib"]},
    "data": [
        "security/emboux_mail_api_security.xml",
        "security/ir.model.access.csv",
        "views/emboux_mail_api_usage_views.xml",
    ],
}
