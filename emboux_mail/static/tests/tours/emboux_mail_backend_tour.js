import {registry} from "@web/core/registry";
import {stepUtils} from "@web_tour/tour_service/tour_utils";

/**
 * Operator flow: create a customer and its domain, a first mailbox with an
 * initial password, then see the mailbox quota refuse a second one.
 * The test sets the default quota to one mailbox per domain.
 */
registry.category("web_tour.tours").add("emboux_mail_backend_tour", {
    url: "/odoo",
    steps: () => [
        stepUtils.showAppsMenuItem(),
        {
            content: "Open the Email Hosting app",
            trigger: '.o_app[data-menu-xmlid="emboux_mail.menu_emboux_mail_root"]',
            run: "click",
        },
        {
            content: "Open the domains",
            trigger: '.o_menu_sections [data-menu-xmlid="emboux_mail.emboux_mail_domain_menu"]',
            run: "click",
        },
        {
            content: "Create a domain",
            trigger: ".o_control_panel .o_list_button_add",
            run: "click",
        },
        {
            content: "Type the domain name",
            trigger: ".o_form_view .o_field_widget[name=name] input",
            run: "edit Tour-Example.COM",
        },
        {
            content: "Type a new customer",
            trigger: ".o_form_view .o_field_widget[name=partner_id] input",
            run: "edit Tour Customer",
        },
        {
            content: "Create the customer on the fly",
            trigger:
                ".o_field_widget[name=partner_id] .o-autocomplete--dropdown-menu .o_m2o_dropdown_option_create a",
            run: "click",
        },
        {
            content: "The customer is set",
            trigger: ".o_field_widget[name=partner_id] input:value(Tour Customer)",
        },
        {
            content: "Save the domain",
            trigger: ".o_form_view .o_form_button_save",
            run: "click",
        },
        {
            content: "The domain is saved, lower-case, and cannot be renamed",
            trigger: ".o_form_view .o_field_widget[name=name] span:contains(tour-example.com)",
        },
        {
            content: "Open the domain's mailboxes",
            trigger: "button[name=action_view_mailboxes]",
            run: "click",
        },
        {
            content: "The domain's mailboxes are listed",
            trigger: ".o_last_breadcrumb_item:contains(Mailboxes)",
        },
        {
            content: "Create a first mailbox",
            trigger: ".o_control_panel .o_list_button_add",
            run: "click",
        },
        {
            content: "The mailbox is in the domain",
            trigger: ".o_form_view .o_field_widget[name=domain_id] input:value(tour-example.com)",
        },
        {
            content: "Type the address",
            trigger: ".o_form_view .o_field_widget[name=email] input",
            run: "edit first@tour-example.com",
        },
        {
            content: "Give an initial password",
            trigger: ".o_form_view .o_field_widget[name=password] input[type=password]",
            run: "edit Tour-Initial-Secret-1",
        },
        {
            content: "Save the mailbox",
            trigger: ".o_form_view .o_form_button_save",
            run: "click",
        },
        {
            content: "The mailbox is saved: its address is read-only now",
            trigger: ".o_form_view .o_field_widget[name=email] span:contains(first@tour-example.com)",
        },
        {
            content: "The password field is gone once saved",
            trigger: ".o_form_view:not(:has(.o_field_widget[name=password]))",
        },
        {
            content: "Create a second mailbox",
            trigger: ".o_control_panel .o_form_button_create",
            run: "click",
        },
        {
            content: "Type the second address",
            trigger: ".o_form_view .o_field_widget[name=email] input",
            run: "edit second@tour-example.com",
        },
        {
            content: "Give it a password",
            trigger: ".o_form_view .o_field_widget[name=password] input[type=password]",
            run: "edit Tour-Initial-Secret-2",
        },
        {
            content: "Try to save it",
            trigger: ".o_form_view .o_form_button_save",
            run: "click",
        },
        {
            content: "The save is refused with the quota message, as a validation warning",
            trigger:
                ".modal:has(.modal-title:contains(Odoo Warning)) .o_error_dialog:not(:has(button.btn-link)) p.text-prewrap:contains(mailbox quota exceeded)",
        },
        {
            content: "Close the error",
            trigger: ".modal .o_error_dialog .modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "Discard the second mailbox",
            trigger: "body:not(:has(.modal)) .o_form_view .o_form_button_cancel",
            run: "click",
        },
        {
            content: "Back on the domain's mailboxes: only the first one exists",
            trigger:
                ".o_list_view:not(:has(.o_data_row:contains(second@tour-example.com))) .o_data_row:contains(first@tour-example.com)",
        },
    ],
});
