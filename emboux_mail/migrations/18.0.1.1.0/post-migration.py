"""Domains hosted before ownership proof existed keep being routed: they
count as vouched for by the operator. The portal's record rules (noupdate
records) now compare the tenant with "=", as the REST API does."""

PORTAL_RULES = (
    "emboux_mail_domain_rule_portal",
    "emboux_mail_mailbox_rule_portal",
    "emboux_mail_alias_rule_portal",
    "emboux_mail_dns_record_rule_portal",
    "emboux_mail_api_key_rule_portal",
)


def migrate(cr, version):
    if not version:
        return
    cr.execute(
        "UPDATE emboux_mail_domain SET verified = TRUE, verified_by = 'operator' "
        "WHERE verified IS NOT TRUE"
    )
    cr.execute(
        """
        UPDATE ir_rule r
           SET domain_force = replace(
                   r.domain_force,
                   '(''partner_id'', ''child_of'', [user.commercial_partner_id.id])',
                   '(''partner_id'', ''='', user.commercial_partner_id.id)')
          FROM ir_model_data d
         WHERE d.model = 'ir.rule' AND d.res_id = r.id
           AND d.module = 'emboux_mail' AND d.name IN %s
        """,
        [PORTAL_RULES],
    )
