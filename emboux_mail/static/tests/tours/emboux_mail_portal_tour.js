import {registry} from "@web/core/registry";

/**
 * Customer flow on the portal, as Acme's portal user: open the domain from
 * /my, create a mailbox, hit the mailbox quota (the test sets it to 2 for a
 * domain that has one), change the new mailbox's password (confirmed in a
 * dialog), add an alias, then create an API key (shown once) and revoke it
 * (confirmed in a dialog naming it).
 */
/** From a domain's page, open the API keys and name a new key `name`. */
export function newKeyNamed(name) {
    return [
        {
            content: "Back to the domains",
            trigger: ".breadcrumb a[href='/my/email']",
            run: "click",
        },
        {
            content: "Open the API keys",
            trigger: "a.o_emboux_keys_link",
            run: "click",
        },
        {
            content: "Name a new key",
            trigger: ".o_emboux_key_form input[name=name]",
            run: `edit ${name}`,
        },
    ];
}

/** Confirm the dialog a destructive action opens, which names `name`. */
export function confirmIn(name) {
    return [
        {
            content: "The dialog names what the action acts on",
            trigger: `.modal .modal-title:contains(${name})`,
        },
        {
            content: "Confirm",
            trigger: ".modal .o_emboux_confirm_ok",
            run: "click",
        },
    ];
}

function typePasswords(password) {
    return [
        {
            content: "Type the password",
            trigger: "form input[name=password]",
            run: `edit ${password}`,
        },
        {
            content: "Type it again",
            trigger: "form input[name=password_confirm]",
            run: `edit ${password}`,
        },
    ];
}

registry.category("web_tour.tours").add("emboux_mail_portal_tour", {
    url: "/my",
    steps: () => [
        {
            content: "Open Email from the portal home (shown once counted)",
            trigger: ".o_portal_index_card a[href='/my/email']:contains(Email)",
            run: "click",
        },
        {
            content: "Open the domain",
            trigger: ".o_emboux_domain_row a:contains(acme.test)",
            run: "click",
        },
        {
            content: "The quota is shown",
            trigger: ".o_emboux_quota:contains(1 / 2 mailboxes)",
        },
        {
            content: "The DNS records can be copied",
            trigger: ".o_emboux_dns_row .o_emboux_copy:not(.d-none)",
        },
        {
            content: "Type the new mailbox's address",
            trigger: ".o_emboux_mailbox_form input[name=local_part]",
            run: "edit second",
        },
        ...typePasswords("Tour-Initial-Secret-2"),
        {
            content: "Create the mailbox",
            trigger: ".o_emboux_mailbox_form button[type=submit]",
            run: "click",
        },
        {
            content: "The mailbox is created",
            trigger: ".o_emboux_done:contains(Mailbox second@acme.test created.)",
        },
        {
            content: "The quota is used up",
            trigger: ".o_emboux_quota:contains(2 / 2 mailboxes)",
        },
        {
            content: "Try a third mailbox",
            trigger: ".o_emboux_mailbox_form input[name=local_part]",
            run: "edit third",
        },
        ...typePasswords("Tour-Initial-Secret-3"),
        {
            content: "Submit it",
            trigger: ".o_emboux_mailbox_form button[type=submit]",
            run: "click",
        },
        {
            content: "The quota rule's message is shown",
            trigger:
                ".o_emboux_error:contains(Domain acme.test: mailbox quota exceeded):contains(2 of 2 mailboxes used)",
        },
        {
            content: "The typed password is not given back",
            trigger: ".o_emboux_mailbox_form input[name=password]:value(/^$/)",
        },
        {
            content: "Change the password of the new mailbox",
            trigger: ".o_emboux_mailbox_row:contains(second@acme.test) .o_emboux_password_link",
            run: "click",
        },
        ...typePasswords("Tour-Changed-Secret-3"),
        {
            content: "Save the new password",
            trigger: ".o_emboux_password_form button[type=submit][aria-haspopup=dialog]",
            run: "click",
        },
        ...confirmIn("second@acme.test"),
        {
            content: "The password is changed",
            trigger: ".o_emboux_done:contains(The password of second@acme.test was changed.)",
        },
        {
            content: "Type an alias",
            trigger: ".o_emboux_alias_form input[name=alias_local_part]",
            run: "edit sales",
        },
        {
            content: "Forward it to the new mailbox",
            trigger: ".o_emboux_alias_form input[name=destination]",
            run: "edit second@acme.test",
        },
        {
            content: "Add the alias",
            trigger: ".o_emboux_alias_form button[type=submit]",
            run: "click",
        },
        {
            content: "The alias is listed",
            trigger: ".o_emboux_alias_row:contains(sales@acme.test):contains(second@acme.test)",
        },
        ...newKeyNamed("Tour key"),
        {
            content: "Create it",
            trigger: ".o_emboux_key_form button[type=submit]",
            run: "click",
        },
        {
            content: "The token is shown once",
            trigger: ".o_emboux_secret input.o_emboux_secret_value:value(/^emb_/)",
        },
        {
            content: "Revoke the new key",
            trigger:
                ".o_emboux_key_row:contains(Tour key) .o_emboux_key_revoke[aria-haspopup=dialog]",
            run: "click",
        },
        ...confirmIn("Tour key"),
        {
            content: "The key is revoked and the token is gone",
            trigger:
                "body:not(:has(.o_emboux_secret)) .o_emboux_key_row:contains(Tour key):contains(Revoked)",
        },
        {
            content: "The revocation names the key",
            trigger: ".o_emboux_done:contains(Tour key)",
        },
    ],
});
