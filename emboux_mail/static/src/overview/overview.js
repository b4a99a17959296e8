import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { Layout } from "@web/search/layout";
import { Component, onWillStart, useState } from "@odoo/owl";

/**
 * Email Hosting's Overview: the figures an operator starts the day with,
 * each card opening the list of what it counts, and the reports. Its data
 * comes from one call, ``emboux.mail.overview.emboux_overview``.
 */
export class EmbouxMailOverview extends Component {
    static template = "emboux_mail.Overview";
    static components = { Layout };
    static props = ["*"];

    setup() {
        this.orm = useService("orm");
        this.action = useService("action");
        this.state = useState({ sections: [], reports: [] });
        onWillStart(() => this.load());
    }

    async load() {
        const overview = await this.orm.call("emboux.mail.overview", "emboux_overview");
        Object.assign(this.state, overview);
    }

    get display() {
        return { controlPanel: {} };
    }

    openCard(card) {
        return this.action.doAction(card.action);
    }

    openReport(report) {
        return this.action.doAction(report.action_id);
    }
}

registry.category("actions").add("emboux_mail.overview", EmbouxMailOverview);
