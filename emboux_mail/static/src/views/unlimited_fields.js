import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { IntegerField, integerField } from "@web/views/fields/integer/integer_field";
import {
    ProgressBarField,
    progressBarField,
} from "@web/views/fields/progress_bar/progress_bar_field";

/**
 * Quotas and limits where 0 means unlimited say so instead of showing 0.
 *
 * An integer read as "Unlimited" when 0 (or as its placeholder, e.g. a
 * retention's "Forever"); in an input, 0 shows as that placeholder and an
 * emptied input saves 0.
 */
export class UnlimitedIntegerField extends IntegerField {
    get formattedValue() {
        if (this.value === 0 && !this.state.hasFocus) {
            return this.props.readonly ? this.props.placeholder : "";
        }
        return super.formattedValue;
    }
}

registry.category("fields").add("emboux_unlimited", {
    ...integerField,
    component: UnlimitedIntegerField,
    displayName: _t("Integer, 0 for Unlimited"),
    extractProps: (fieldInfo, dynamicInfo) => ({
        ...integerField.extractProps(fieldInfo, dynamicInfo),
        placeholder: fieldInfo.attrs.placeholder || _t("Unlimited"),
    }),
});

/**
 * A progress bar of use against a quota (``max_value``); without quota (0)
 * it reads "12 / Unlimited" rather than a bar out of a made-up 100.
 */
export class QuotaProgressBarField extends ProgressBarField {
    static template = "emboux_mail.QuotaProgressBarField";

    get unlimited() {
        return !this.isPercentage && !this.props.record.data[this.maxValueField];
    }

    get unlimitedLabel() {
        return _t("Unlimited");
    }
}

registry.category("fields").add("emboux_quota_progressbar", {
    ...progressBarField,
    component: QuotaProgressBarField,
    displayName: _t("Progress Bar, 0 for Unlimited"),
});
