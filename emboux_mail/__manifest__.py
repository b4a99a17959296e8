# Copyright 2026 EmBoux
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
{
    "name": "EmBoux Mail Hosting",
    "summary": "Your customers' mail domains, mailboxes and aliases, "
    "optionally synced with an EmBoux API",
    "version": "18.0.1.0.0",
    "category": "Productivity",
    "website": "https://emboux.com",
    "author": "EmBoux",
    "license": "AGPL-3",
    "development_status": "Alpha",
    "application": True,
    "installable": True,
    "depends": ["mail", "portal"],
    "external_dependencies": {"python": ["requests", "dnspython", "passlib"]},
    "data": [
        "security/emboux_mail_security.xml",
        "views/emboux_mail_menus.xml",
    ],
}
