# Copyright 2026 EmBoux
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
{
    "name": "EmBoux Mail Hosting",
    "summary": "Your customers' mail domains, mailboxes and aliases, "
    "optionally synced with an EmBoux API",
    "version": "18.0.1.4.0",
    "category": "Productivity",
    "website": "https://emboux.com",
    "author": "EmBoux",
    "license": "AGPL-3",
    "development_status": "Alpha",
    "application": True,
    "installable": True,
    "depends": ["mail", "portal", "account"],
    "external_dependencies": {
        "python": [
            "requests",
            "dnspython",
            "passlib",
            "publicsuffixlist",
            "cryptography",
        ]
    },
    "data": [
        "security/emboux_mail_security.xml",
        "security/ir.model.access.csv",
        "views/emboux_mail_secret_show_views.xml",
        "views/emboux_mail_plan_views.xml",
        "views/emboux_mail_api_key_views.xml",
        "views/emboux_mail_domain_views.xml",
        "views/emboux_mail_mailbox_views.xml",
        "views/emboux_mail_alias_views.xml",
        "views/res_partner_views.xml",
        "views/res_config_settings_views.xml",
        "wizards/emboux_mail_domain_transfer_views.xml",
        "wizards/emboux_mail_mailbox_password_views.xml",
        "wizards/emboux_mail_api_key_create_views.xml",
        "wizards/emboux_mail_tenant_rename_views.xml",
        "wizards/emboux_mail_billing_wizard_views.xml",
        "views/emboux_mail_billing_views.xml",
        "views/account_move_views.xml",
        "views/emboux_mail_menus.xml",
        "views/emboux_mail_sync_event_views.xml",
        "views/emboux_mail_reconcile_views.xml",
        "views/emboux_mail_security_log_views.xml",
        "security/emboux_mail_portal_security.xml",
        "views/portal_templates.xml",
        "data/ir_cron_data.xml",
        "data/ir_cron_sync_data.xml",
        "data/ir_cron_reconcile_data.xml",
        "data/ir_cron_billing_data.xml",
        "data/ir_cron_outbound_data.xml",
        "data/mail_template_data.xml",
    ],
    "demo": [
        "demo/emboux_mail_demo.xml",
        "demo/emboux_mail_portal_demo.xml",
        "demo/emboux_mail_billing_demo.xml",
    ],
    "assets": {
        "web.assets_frontend": [
            "emboux_mail/static/src/js/emboux_mail_portal.js",
        ],
        "web.assets_tests": [
            "emboux_mail/static/tests/tours/*.js",
        ],
    },
}
