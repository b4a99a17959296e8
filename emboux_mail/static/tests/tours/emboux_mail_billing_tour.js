import {registry} from "@web/core/registry";

/**
 * A customer over its plan's domain quota, two of its domains suspended for
 * billing, chooses the bigger plan on /my/email/plan, pays the invoice with
 * the demo payment provider and finds its plan in force.
 */
registry.category("web_tour.tours").add("emboux_mail_billing_tour", {
    url: "/my/email/plan",
    steps: () => [
        {
            content: "The plan in force is shown",
            trigger: ".o_emboux_plan_name:contains(Starter)",
        },
        {
            content: "Usage against the domain quota",
            trigger: ".o_emboux_usage td:contains(4 of 2)",
        },
        {
            content: "The domains billing suspended are named",
            trigger: ".o_emboux_grace:contains(four.acme.test)",
        },
        {
            content: "Choose the bigger plan",
            trigger: ".o_emboux_plan_offer[data-plan=Business] .o_emboux_plan_choose",
            run: "click",
        },
        {
            content: "The invoice opens: pay it",
            trigger: "a[data-bs-target='#pay_with']:contains(Pay Now):visible",
            run: "click",
        },
        {
            content: "Demo payment details",
            trigger: "#pay_with input#customer_input",
            run: "edit 4242424242424242",
        },
        {
            content: "Pay",
            trigger: "#pay_with button[name=o_payment_submit_button]:not(:disabled)",
            run: "click",
        },
        {
            content: "The payment is processed: back on the invoice, nothing to pay",
            trigger: "body:has(#portal_pay):not(:has(a[data-bs-target='#pay_with']))",
            timeout: 30000,
        },
        {
            content: "Back to the plan",
            trigger: "body",
            run: "goToUrl /my/email/plan",
        },
        {
            content: "The bigger plan is in force",
            trigger: ".o_emboux_plan_name:contains(Business)",
        },
        {
            content: "No grace period is left: nothing is suspended any more",
            trigger: "body:not(:has(.o_emboux_grace))",
        },
    ],
});
