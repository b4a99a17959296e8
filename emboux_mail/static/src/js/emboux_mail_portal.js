/** @odoo-module **/

import {_t} from "@web/core/l10n/translation";
import {browser} from "@web/core/browser/browser";
import {ConfirmationDialog} from "@web/core/confirmation_dialog/confirmation_dialog";
import publicWidget from "@web/legacy/js/public/public_widget";

/**
 * Copy buttons of the mail hosting portal (DNS records, a new password or
 * token). They are hidden in the page's HTML and shown here, so that no
 * button is left that does nothing without this script.
 */
publicWidget.registry.EmbouxMailCopy = publicWidget.Widget.extend({
    selector: ".o_emboux_copy",
    events: {click: "_onClick"},

    start() {
        this.el.classList.remove("d-none");
        return this._super(...arguments);
    },

    async _onClick(ev) {
        ev.preventDefault();
        const icon = this.el.querySelector(".fa");
        try {
            await browser.navigator.clipboard.writeText(this.el.dataset.copy);
        } catch {
            // no clipboard (an insecure origin): the value stays selectable
            this.el.setAttribute("title", _t("Select the value and copy it"));
            return;
        }
        icon?.classList.replace("fa-clipboard", "fa-check");
        this.el.classList.add("o_emboux_copied");
        browser.setTimeout(() => {
            icon?.classList.replace("fa-check", "fa-clipboard");
            this.el.classList.remove("o_emboux_copied");
        }, 2000);
    },
});

/**
 * Destructive actions ask first, in a dialog naming what they act on (the
 * server writes the question in the data-emboux-* attributes). A link leads
 * to the action's confirmation page, which asks without this script: here
 * the dialog asks instead and posts to the same address once confirmed. A
 * form is sent once confirmed.
 */
publicWidget.registry.EmbouxMailConfirm = publicWidget.Widget.extend({
    selector: "a[data-emboux-ask], form[data-emboux-ask]",
    events: {click: "_onClick", submit: "_onSubmit"},

    start() {
        const openers =
            this.el.tagName === "A" ? [this.el] : this.el.querySelectorAll("[type=submit]");
        for (const opener of openers) {
            opener.setAttribute("aria-haspopup", "dialog");
        }
        return this._super(...arguments);
    },

    _onClick(ev) {
        if (this.el.tagName !== "A") {
            return;
        }
        ev.preventDefault();
        this._ask(() => this._post(this.el.href));
    },

    _onSubmit(ev) {
        ev.preventDefault();
        // submit() sends the form without a new submit event
        this._ask(() => this.el.submit());
    },

    _ask(proceed) {
        const {embouxAsk, embouxDetail, embouxConfirm} = this.el.dataset;
        this.call("dialog", "add", ConfirmationDialog, {
            title: embouxAsk,
            body: embouxDetail,
            confirmLabel: embouxConfirm,
            confirmClass: "btn-danger o_emboux_confirm_ok",
            confirm: proceed,
            cancel: () => {},
        });
    },

    _post(url) {
        const form = document.createElement("form");
        form.method = "post";
        form.action = url;
        form.classList.add("d-none");
        const token = document.createElement("input");
        token.type = "hidden";
        token.name = "csrf_token";
        token.value = odoo.csrf_token;
        form.append(token);
        document.body.append(form);
        form.submit();
    },
});

export default publicWidget.registry.EmbouxMailCopy;
