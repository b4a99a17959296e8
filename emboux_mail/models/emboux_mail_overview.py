from odoo import api, models

# the cards of the Overview: (key, section, model, action, domain, tone)
CARDS = (
    ("domains", "domains", "emboux.mail.domain", "emboux_mail_domain_action", [], ""),
    (
        "dns_ok",
        "dns",
        "emboux.mail.domain",
        "emboux_mail_domain_action",
        [("dns_state", "=", "ok")],
        "success",
    ),
    (
        "dns_warning",
        "dns",
        "emboux.mail.domain",
        "emboux_mail_domain_action",
        [("dns_state", "=", "warning")],
        "warning",
    ),
    (
        "dns_error",
        "dns",
        "emboux.mail.domain",
        "emboux_mail_domain_action",
        [("dns_state", "=", "error")],
        "danger",
    ),
    (
        "dns_unchecked",
        "dns",
        "emboux.mail.domain",
        "emboux_mail_domain_action",
        [("dns_state", "in", ("unchecked", "unknown"))],
        "muted",
    ),
    (
        "suspended",
        "domains",
        "emboux.mail.domain",
        "emboux_mail_domain_action",
        [("suspended", "=", True)],
        "danger",
    ),
    (
        "unverified",
        "domains",
        "emboux.mail.domain",
        "emboux_mail_domain_action",
        [("verified", "=", False)],
        "warning",
    ),
    (
        "sending_suspended",
        "domains",
        "emboux.mail.domain",
        "emboux_mail_domain_action",
        [("outbound_status", "=", "suspended")],
        "danger",
    ),
    (
        "mailboxes",
        "mailboxes",
        "emboux.mail.mailbox",
        "emboux_mail_mailbox_action",
        [],
        "",
    ),
    (
        "mailboxes_full",
        "mailboxes",
        "emboux.mail.mailbox",
        "emboux_mail_mailbox_action",
        [("used_percent", ">=", 80)],
        "warning",
    ),
    ("aliases", "mailboxes", "emboux.mail.alias", "emboux_mail_alias_action", [], ""),
    (
        "customers",
        "customers",
        "res.partner",
        "emboux_mail_customer_action",
        [("is_company", "=", True), ("emboux_partner_ref", "!=", False)],
        "",
    ),
    (
        "grace",
        "customers",
        "emboux.mail.grace",
        "emboux_mail_grace_action",
        [("state", "=", "open")],
        "warning",
    ),
    (
        "sync_failing",
        "sync",
        "emboux.mail.sync.event",
        "emboux_mail_sync_event_action",
        [
            "|",
            ("state", "=", "error"),
            "&",
            ("state", "=", "pending"),
            ("attempts", ">", 0),
        ],
        "danger",
    ),
)


class EmbouxMailOverview(models.AbstractModel):
    """The figures of the Overview dashboard, in one call. They are counted
    as the user sees the records (access and record rules apply), so that
    each card opens a list of exactly what it counted."""

    _name = "emboux.mail.overview"
    _description = "Mail Hosting Overview"

    @api.model
    def _emboux_titles(self):
        """``({section: title}, {card: title})``, in the user's language."""
        _ = self.env._
        sections = {
            "domains": _("Domains"),
            "dns": _("DNS Health"),
            "mailboxes": _("Mailboxes and Aliases"),
            "customers": _("Customers"),
            "sync": _("Upstream EmBoux API"),
        }
        cards = {
            "domains": _("Domains"),
            "suspended": _("Suspended"),
            "unverified": _("Not Verified"),
            "sending_suspended": _("Sending Suspended"),
            "dns_ok": _("Healthy"),
            "dns_warning": _("Incomplete"),
            "dns_error": _("Failing"),
            "dns_unchecked": _("Not Checked"),
            "mailboxes": _("Mailboxes"),
            "mailboxes_full": _("Nearly Full"),
            "aliases": _("Aliases"),
            "customers": _("Customers"),
            "grace": _("Grace Periods Running"),
            "sync_failing": _("Failing Syncs"),
        }
        return sections, cards

    @api.model
    def emboux_overview(self):
        """``{"sections": [{"key", "title", "cards"}], "reports"}``: each
        card's count and the action listing what it counts; the reports are
        the Reporting menu's entries the user may open. Cards of models the
        user may not read, and the upstream's when there is none, are left
        out."""
        connected = self.env["emboux.mail.sync.mixin"]._emboux_sync_configured()
        section_titles, card_titles = self._emboux_titles()
        sections = {}
        for key, section, model, xmlid, domain, tone in CARDS:
            records = self.env[model]
            if (section == "sync" and not connected) or not records.has_access("read"):
                continue
            action = self.env["ir.actions.act_window"]._for_xml_id(
                f"emboux_mail.{xmlid}"
            )
            action.update(name=card_titles[key], domain=domain)
            sections.setdefault(
                section, {"key": section, "title": section_titles[section], "cards": []}
            )["cards"].append(
                {
                    "key": key,
                    "label": card_titles[key],
                    "count": records.search_count(domain),
                    "tone": tone,
                    "action": action,
                }
            )
        return {"sections": list(sections.values()), "reports": self._emboux_reports()}

    @api.model
    def _emboux_reports(self):
        """The Reporting menu's entries the user may see, in its order."""
        menu = self.env.ref("emboux_mail.emboux_mail_reporting_menu")
        entries = self.env["ir.ui.menu"].search(
            [("parent_id", "=", menu.id), ("action", "!=", False)]
        )
        return [
            {"id": entry.id, "name": entry.name, "action_id": entry.action.id}
            for entry in entries
        ]
