import {registry} from "@web/core/registry";
import {confirmIn, newKeyNamed} from "./emboux_mail_portal_tour";

/**
 * A customer's day on the portal, as Acme's portal user, in any language:
 * every step finds its element by its class, its data attributes or the
 * names of the customer's own records, never by a text of the page.
 *
 * The user creates a mailbox with a generated password and reloads the page
 * that shows it, gives it a new generated password (confirmed in a dialog)
 * and reloads again, deletes an alias (confirmed in a dialog naming it), then
 * creates an API key and reloads the page that shows its token. After each
 * reload the secret is gone and nothing was done again: the test checks the
 * records and the secrets the pages showed.
 */
function shownOnceThenReload(what) {
    return [
        {
            content: `The ${what} is shown, on a page of its own address`,
            trigger: ".o_emboux_secret input.o_emboux_secret_value:value(/^\\S{16,}$/)",
            run() {
                if (/\/(new|password)$/.test(window.location.pathname)) {
                    throw new Error(`The form's address was kept: ${window.location}`);
                }
            },
        },
        {
            content: "Reload the page",
            trigger: ".o_emboux_secret",
            run() {
                window.location.reload();
            },
        },
        {
            content: `The ${what} is not shown again, nor anything done again`,
            trigger: "body:not(:has(.o_emboux_secret)):not(:has(.o_emboux_error))",
        },
    ];
}

registry.category("web_tour.tours").add("emboux_mail_customer_day_tour", {
    url: "/my/email",
    steps: () => [
        {
            content: "Open the domain",
            trigger: ".o_emboux_domain_row a:contains(acme.test)",
            run: "click",
        },
        {
            content: "Type the new mailbox's address",
            trigger: ".o_emboux_mailbox_form input[name=local_part]",
            run: "edit day",
        },
        {
            content: "Let a password be generated",
            trigger: ".o_emboux_mailbox_form input[name=generate]",
            run: "check",
        },
        {
            content: "Create the mailbox",
            trigger: ".o_emboux_mailbox_form button[type=submit]",
            run: "click",
        },
        {
            content: "The creation names the mailbox",
            trigger: ".o_emboux_done:contains(day@acme.test)",
        },
        ...shownOnceThenReload("generated password"),
        {
            content: "The mailbox is listed once",
            trigger: ".o_emboux_mailbox_row:contains(day@acme.test)",
        },
        {
            content: "Give it a new password",
            trigger: ".o_emboux_mailbox_row:contains(day@acme.test) .o_emboux_password_link",
            run: "click",
        },
        {
            content: "Let it be generated",
            trigger: ".o_emboux_password_form input[name=generate]",
            run: "check",
        },
        {
            content: "Save",
            trigger: ".o_emboux_password_form button[type=submit][aria-haspopup=dialog]",
            run: "click",
        },
        ...confirmIn("day@acme.test"),
        {
            content: "The change names the mailbox",
            trigger: ".o_emboux_done:contains(day@acme.test)",
        },
        ...shownOnceThenReload("new password"),
        {
            content: "Delete the alias",
            trigger:
                ".o_emboux_alias_row:contains(contact@acme.test) .o_emboux_alias_delete[aria-haspopup=dialog]",
            run: "click",
        },
        ...confirmIn("contact@acme.test"),
        {
            content: "The deletion names the alias, which is gone",
            trigger:
                "body:not(:has(.o_emboux_alias_row:contains(contact@acme.test))) .o_emboux_done:contains(contact@acme.test)",
        },
        ...newKeyNamed("Day key"),
        {
            content: "Create it",
            trigger: ".o_emboux_key_form button[type=submit]",
            run: "click",
        },
        {
            content: "The creation names the key",
            trigger: ".o_emboux_done:contains(Day key)",
        },
        ...shownOnceThenReload("token"),
        {
            content: "The key is listed",
            trigger: ".o_emboux_key_row:contains(Day key)",
        },
    ],
});
