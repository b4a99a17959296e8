import logging

from odoo import api, fields, models

_logger = logging.getLogger(__name__)

# Set by the REST API on the environment of a request it serves: the id of
# the key that authenticated it (0 for the server's EMBOUX_API_KEY), so that
# a logged action names the key, not only the API's technical user.
API_KEY_CONTEXT = "emboux_api_key_id"
EVENTS = [
    ("key_created", "API key created"),
    ("key_revoked", "API key revoked"),
    ("key_restored", "API key restored"),
    ("key_deleted", "API key deleted"),
    ("domain_verified", "Domain verified"),
    ("domain_suspended", "Domain suspended"),
    ("domain_activated", "Domain activated"),
    ("owner_transferred", "Domain owner transferred"),
]


class EmbouxMailSecurityLog(models.Model):
    """Who did a security-relevant thing, when and from where: append-only,
    written with ``sudo`` by the rules themselves, read by operators (as
    core logs API key creation and removal, with the address)."""

    _name = "emboux.mail.security.log"
    _description = "Mail Hosting Security Log"
    _order = "id desc"

    event = fields.Selection(EVENTS, required=True, readonly=True, index=True)
    name = fields.Char(string="Object", readonly=True)
    res_model = fields.Char(readonly=True)
    res_id = fields.Many2oneReference(model_field="res_model", readonly=True)
    partner_id = fields.Many2one(
        "res.partner", string="Customer", readonly=True, index=True
    )
    detail = fields.Char(readonly=True)
    user_id = fields.Many2one("res.users", string="User", readonly=True)
    api_key_id = fields.Many2one(
        "emboux.mail.api.key",
        string="Through API Key",
        readonly=True,
        ondelete="set null",
    )
    channel = fields.Selection(
        [
            ("backend", "Backend"),
            ("portal", "Portal"),
            ("api", "REST API"),
            ("system", "Scheduled action"),
        ],
        readonly=True,
    )
    address = fields.Char(string="IP Address", readonly=True)
    company_id = fields.Many2one(
        "res.company", readonly=True, default=lambda self: self.env.company
    )

    @api.model
    def _emboux_log(self, event, records, detail=""):
        """Log ``event`` for each of ``records`` (domains or keys)."""
        actor = self.env["emboux.mail.audit"]._emboux_actor()
        # this log's older name of the scheduled actions' door
        channel = "system" if actor["channel"] == "cron" else actor["channel"]
        address = actor["address"]
        values = []
        for record in records:
            values.append(
                {
                    "event": event,
                    "name": record.display_name,
                    "res_model": record._name,
                    "res_id": record.id,
                    "partner_id": record.partner_id.id,
                    "detail": detail,
                    "user_id": actor["user_id"],
                    "api_key_id": actor["api_key_id"],
                    "channel": channel,
                    "address": address,
                    "company_id": record.company_id.id or self.env.company.id,
                }
            )
            _logger.info(
                "%s: %s (%s) by %s (#%s) via %s from %s %s",
                event,
                record.display_name,
                record._name,
                self.env.user.login,
                self.env.uid,
                channel,
                address or "n/a",
                detail,
            )
        return self.sudo().create(values)
