import {registry} from "@web/core/registry";
import {stepUtils} from "@web_tour/tour_service/tour_utils";

/**
 * An operator's day: a customer with a plan, its domain, a mailbox with a
 * generated password and an alias; the domain suspended and activated
 * again, its DNS checked, what deleting it would delete; then the Overview.
 *
 * Steps find elements by field, button and data attributes, never by their
 * English text, so that the tour runs in any language. The test gives the
 * addon's texts it expects in the user's language (app and Overview names,
 * read from the loaded translations) in the ``emboux_tour_texts`` cookie.
 */
function expectedTexts() {
    const cookie = document.cookie
        .split("; ")
        .find((item) => item.startsWith("emboux_tour_texts="));
    if (!cookie) {
        return {app: "Email Hosting", overview: "Overview"};
    }
    return JSON.parse(decodeURIComponent(cookie.slice("emboux_tour_texts=".length)));
}

function openMenu(xmlid) {
    return {
        content: `Open the menu ${xmlid}`,
        trigger: `.o_menu_sections [data-menu-xmlid="emboux_mail.${xmlid}"]`,
        run: "click",
    };
}

registry.category("web_tour.tours").add("emboux_mail_operator_tour", {
    url: "/odoo",
    steps: () => {
        const texts = expectedTexts();
        return [
            stepUtils.showAppsMenuItem(),
            {
                content: "Open the Email Hosting app",
                trigger: '.o_app[data-menu-xmlid="emboux_mail.menu_emboux_mail_root"]',
                run: "click",
            },
            {
                content: "The app is named in the user's language",
                trigger: `.o_main_navbar .o_menu_brand:contains(${texts.app})`,
            },
            {
                content: "The app opens on the Overview",
                trigger: `.o_emboux_overview .o_last_breadcrumb_item:contains(${texts.overview})`,
            },
            // a customer with a plan
            openMenu("emboux_mail_customer_menu"),
            {
                content: "Create a customer",
                trigger: ".o_control_panel .o-kanban-button-new",
                run: "click",
            },
            {
                content: "Name it (a text area, or an input with autocompletion)",
                trigger:
                    ".o_form_view .o_field_widget[name=name] textarea, .o_form_view .o_field_widget[name=name] input",
                run: "edit Tour Customer",
            },
            {
                content: "Choose its plan, at the top of the form",
                trigger: ".o_form_view .o_field_widget[name=emboux_plan_id] input",
                run: "edit Tour Plan",
            },
            {
                content: "Pick the plan",
                trigger:
                    ".o_field_widget[name=emboux_plan_id] .o-autocomplete--dropdown-item a:contains(Tour Plan)",
                run: "click",
            },
            {
                content: "Save the customer",
                trigger: ".o_form_view .o_form_button_save",
                run: "click",
            },
            {
                content: "Its quotas show under the plan",
                trigger: ".o_form_view .o_field_widget[name=emboux_domains_allowed]:contains(2)",
            },
            // its domain
            {
                content: "Open the customer's domains",
                trigger: ".o_form_view button[name=action_view_emboux_domains]",
                run: "click",
            },
            {
                content: "Create a domain",
                trigger: ".o_control_panel .o_list_button_add",
                run: "click",
            },
            {
                content: "The domain is the customer's",
                trigger:
                    ".o_form_view .o_field_widget[name=partner_id] input:value(Tour Customer)",
            },
            {
                content: "Type the domain name",
                trigger: ".o_form_view .o_field_widget[name=name] input",
                run: "edit tour-day.com",
            },
            {
                content: "Save the domain",
                trigger: ".o_form_view .o_form_button_save",
                run: "click",
            },
            {
                content: "The domain is saved",
                trigger: ".o_form_view .o_field_widget[name=name] span:contains(tour-day.com)",
            },
            // a mailbox with a generated password
            {
                content: "Open the domain's mailboxes",
                trigger: "button[name=action_view_mailboxes]",
                run: "click",
            },
            {
                content: "Create a mailbox",
                trigger: ".o_control_panel .o_list_button_add",
                run: "click",
            },
            {
                content: "Type its address",
                trigger: ".o_form_view .o_field_widget[name=email] input",
                run: "edit info@tour-day.com",
            },
            {
                content: "Save the mailbox, without password",
                trigger: ".o_form_view .o_form_button_save",
                run: "click",
            },
            {
                content: "Set its password",
                trigger:
                    ".o_form_view:has(.o_field_widget[name=email] span:contains(info@tour-day.com)) .o_statusbar_buttons button.btn-primary",
                run: "click",
            },
            {
                content: "Generated is the default: apply",
                trigger: ".modal .o_field_widget[name=mode] input[data-value=generate]:checked",
            },
            {
                content: "Generate the password",
                trigger: ".modal button[name=action_apply]",
                run: "click",
            },
            {
                content: "The generated password is shown once",
                trigger: ".modal .o_field_widget[name=secret] span:not(:empty)",
            },
            {
                content: "Close it",
                trigger: ".modal .modal-footer .btn-primary",
                run: "click",
            },
            {
                content: "Back to the domain",
                trigger: "body:not(:has(.modal)) .o_form_view .o_field_widget[name=domain_id] a",
                run: "click",
            },
            // an alias
            {
                content: "Open the domain's aliases",
                trigger: ".o_form_view button[name=action_view_aliases]",
                run: "click",
            },
            {
                content: "Add an alias, in the list",
                trigger: ".o_control_panel .o_list_button_add",
                run: "click",
            },
            {
                content: "Type its source",
                trigger: ".o_list_view .o_data_row .o_field_widget[name=source] input",
                run: "edit sales@tour-day.com",
            },
            {
                content: "Type its destination",
                trigger: ".o_list_view .o_data_row .o_field_widget[name=destination] input",
                run: "edit info@tour-day.com",
            },
            {
                content: "Save the alias",
                trigger: ".o_control_panel .o_list_button_save",
                run: "click",
            },
            {
                content: "The alias is saved",
                trigger:
                    ".o_list_view:not(:has(.o_selected_row)) .o_data_row:contains(sales@tour-day.com)",
            },
            {
                content: "Back to the domain",
                trigger: ".o_breadcrumb a:contains(tour-day.com):not(:contains(@))",
                run: "click",
            },
            {
                content: "The domain counts its mailbox and alias",
                trigger:
                    ".o_form_view button[name=action_view_aliases] .o_stat_value:contains(1)",
            },
            // suspended, then activated
            {
                content: "Suspend the domain",
                trigger: ".o_form_view button[name=action_suspend]",
                run: "click",
            },
            {
                content: "Confirm",
                trigger: ".modal .modal-footer .btn-primary",
                run: "click",
            },
            {
                content: "Suspended: it can be activated",
                trigger: ".o_form_view button[name=action_activate]",
            },
            {
                content: "Activate it again",
                trigger: ".o_form_view button[name=action_activate]",
                run: "click",
            },
            {
                content: "Active again",
                trigger: ".o_form_view button[name=action_suspend]",
            },
            // its DNS
            {
                content: "Check its DNS",
                trigger: ".o_form_view button[name=action_check_dns]",
                run: "click",
            },
            {
                content: "A notification says what was found",
                trigger: ".o_notification:contains(tour-day.com)",
            },
            {
                content: "The form shows the failing health",
                trigger: ".o_form_view .o_field_widget[name=dns_state] .text-bg-danger",
            },
            // what deleting it would delete
            {
                content: "Open the actions",
                trigger: ".o_control_panel .o_cp_action_menus button",
                run: "click",
            },
            {
                content: "Delete",
                trigger: ".o-dropdown--menu .dropdown-item:has(.fa-trash-o)",
                run: "click",
            },
            {
                content: "The question names the domain and counts what goes with it",
                trigger: ".modal .modal-body:contains(tour-day.com):contains((1))",
            },
            {
                content: "Keep it",
                trigger: ".modal .modal-footer .btn-secondary",
                run: "click",
            },
            // the Overview
            openMenu("emboux_mail_overview_menu"),
            {
                content: "The Overview counts the failing domain",
                trigger: ".o_emboux_overview [data-emboux-kpi=dns_error] .o_emboux_kpi_value.text-danger",
                run: "click",
            },
            {
                content: "Its card lists the failing domains",
                trigger: ".o_list_view .o_data_row:contains(tour-day.com)",
            },
        ];
    },
});
