import { ConfirmationDialog } from "@web/core/confirmation_dialog/confirmation_dialog";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { FormController } from "@web/views/form/form_controller";
import { formView } from "@web/views/form/form_view";
import { ListController } from "@web/views/list/list_controller";
import { listView } from "@web/views/list/list_view";

/**
 * Deleting a domain deletes its mailboxes and aliases: the delete dialogs
 * of the domain list and form say so, with their counts, where the generic
 * question would not.
 */
async function confirmDomainDelete(controller, resIds) {
    const body = await controller.orm.call(
        "emboux.mail.domain",
        "emboux_delete_confirmation",
        [resIds]
    );
    controller.dialogService.add(ConfirmationDialog, {
        ...controller.deleteConfirmationDialogProps,
        body,
    });
}

export class DomainListController extends ListController {
    setup() {
        super.setup();
        this.orm = useService("orm");
    }

    async onDeleteSelectedRecords() {
        await confirmDomainDelete(this, await this.model.root.getResIds(true));
    }
}

export class DomainFormController extends FormController {
    async deleteRecord() {
        await confirmDomainDelete(this, [this.model.root.resId]);
    }
}

registry.category("views").add("emboux_mail_domain_list", {
    ...listView,
    Controller: DomainListController,
});
registry.category("views").add("emboux_mail_domain_form", {
    ...formView,
    Controller: DomainFormController,
});
