import {registry} from "@web/core/registry";

/**
 * Storage in the portal, as Acme's portal user. The test reports, as the
 * mail server does, 450 MB used of info@acme.test's 500 MB (90%: the banner
 * names it) and 100 MB of archive@acme.test's 500 MB (20%: a bar, no
 * banner); the plan keeps mail 1 to 365 days. The user follows the banner
 * from /my to the mailbox, sees the usage bars and keeps mail 30 days.
 */
registry.category("web_tour.tours").add("emboux_mail_storage_tour", {
    url: "/my",
    steps: () => [
        {
            content: "The home page names the mailbox filling up",
            trigger:
                ".o_emboux_storage_banner.alert-warning:contains(80 %) a.o_emboux_storage_mailbox:contains(info@acme.test)",
        },
        {
            content: "The other mailbox is not named",
            trigger: ".o_emboux_storage_banner:not(:contains(archive@acme.test))",
        },
        {
            content: "Open Email",
            trigger: ".o_portal_index_card a[href='/my/email']:contains(Email)",
            run: "click",
        },
        {
            content: "The storage of all the mailboxes is shown",
            trigger: ".o_emboux_customer_storage:contains(550.0 MB)",
        },
        {
            content: "Open the mailbox from the banner",
            trigger: ".o_emboux_storage_banner a:contains(info@acme.test)",
            run: "click",
        },
        {
            content: "The mailbox filling up has a warning bar",
            trigger:
                ".o_emboux_mailbox_row:contains(info@acme.test) .o_emboux_mailbox_storage:contains(450.0 MB of 500 MB) .progress-bar.bg-warning",
        },
        {
            content: "The other mailbox's usage bar",
            trigger:
                ".o_emboux_mailbox_row:contains(archive@acme.test) .o_emboux_mailbox_storage:contains(100.0 MB of 500 MB):contains(20.0 %) .progress[aria-valuenow='20.0']",
        },
        {
            content: "The domain's total",
            trigger: ".o_emboux_domain_storage:contains(550.0 MB)",
        },
        {
            content: "Mail is kept forever",
            trigger: ".o_emboux_keep_mail:contains(forever)",
        },
        {
            content: "The plan's range is shown",
            trigger: ".o_emboux_retention_form:contains(Your plan keeps mail 1 to 365 days)",
        },
        {
            content: "Keep mail 30 days",
            trigger: ".o_emboux_retention_form input[name=retention_days]",
            run: "edit 30",
        },
        {
            content: "Save",
            trigger: ".o_emboux_retention_form button[type=submit]",
            run: "click",
        },
        {
            content: "The change is confirmed",
            trigger: ".o_emboux_done:contains(The time mail is kept was changed.)",
        },
        {
            content: "Mail is now kept 30 days",
            trigger: ".o_emboux_keep_mail:contains(30 days)",
        },
    ],
});
