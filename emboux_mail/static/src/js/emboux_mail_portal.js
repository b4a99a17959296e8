/** @odoo-module **/

import {_t} from "@web/core/l10n/translation";
import {browser} from "@web/core/browser/browser";
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

export default publicWidget.registry.EmbouxMailCopy;
