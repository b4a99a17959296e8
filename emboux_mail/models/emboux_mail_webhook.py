from datetime import timedelta

from odoo import api, fields, models, tools
from odoo.exceptions import ValidationError

from ..exceptions import EmbouxValidationError
from ..services import webhooks

# Settings (ir.config_parameter) and their defaults
ALLOW_PRIVATE = "emboux_mail.webhook_allow_private"
DISABLE_AFTER_HOURS = ("emboux_mail.webhook_disable_after_hours", 120)
# how long the previous secret still signs after a rotation
ROTATION_OVERLAP = timedelta(hours=24)


class EmbouxMailWebhook(models.Model):
    """An endpoint that hears lifecycle events: of one tenant, or of every
    tenant when it has no customer (operators only). Its secret is shown
    once; a rotation keeps the previous one signing for a day."""

    _name = "emboux.mail.webhook"
    _description = "Webhook Endpoint"
    _inherit = ["mail.thread"]
    _order = "id desc"

    name = fields.Char(compute="_compute_name", store=True, readonly=False)
    url = fields.Char(string="URL", required=True, tracking=True)
    partner_id = fields.Many2one(
        "res.partner",
        string="Customer",
        index=True,
        ondelete="cascade",
        tracking=True,
        help="Only this customer's events; empty: every customer's.",
    )
    topic_ids = fields.Many2many(
        "emboux.mail.webhook.topic", string="Events", required=True
    )
    active = fields.Boolean(default=True, tracking=True)
    disabled_reason = fields.Char(readonly=True, copy=False)
    secret = fields.Char(groups="base.group_system", copy=False, readonly=True)
    previous_secret = fields.Char(groups="base.group_system", copy=False, readonly=True)
    previous_secret_until = fields.Datetime(readonly=True, copy=False)
    secret_shown = fields.Boolean(readonly=True, copy=False)
    failing_since = fields.Datetime(
        readonly=True,
        copy=False,
        help="Every attempt failed since then; the endpoint is disabled when "
        "it lasts too long.",
    )
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    delivery_ids = fields.One2many("emboux.mail.webhook.delivery", "webhook_id")
    attempt_ids = fields.One2many("emboux.mail.webhook.attempt", "webhook_id")

    @api.depends("url")
    def _compute_name(self):
        for webhook in self:
            webhook.name = webhook.url

    @api.constrains("url")
    def _check_url(self):
        allow = self._emboux_allow_private()
        for webhook in self:
            try:
                webhooks.check_url(webhook.url, allow)
            except webhooks.UnsafeAddress as error:
                raise EmbouxValidationError(
                    self.env._(
                        "Webhook URL %(url)s is refused: %(reason)s.",
                        url=webhook.url,
                        reason=str(error),
                    ),
                    detail=f"Webhook URL refused: {error}",
                    status=422,
                    field="url",
                ) from error

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            vals.setdefault("secret", webhooks.new_secret())
        webhooks_ = super().create(vals_list)
        webhooks_._emboux_subscriptions_changed()
        return webhooks_

    def write(self, vals):
        result = super().write(vals)
        if {"active", "partner_id", "topic_ids"} & set(vals):
            self._emboux_subscriptions_changed()
        return result

    def unlink(self):
        result = super().unlink()
        self._emboux_subscriptions_changed()
        return result

    def _emboux_subscriptions_changed(self):
        """Forget who listens: now, for the rest of this transaction (once
        the change is in the table), and again at commit, for a process
        that cached the old state meanwhile."""
        self.env.flush_all()
        self.env.registry.clear_cache()
        self.env.cr.postcommit.add(self.env.registry.clear_cache)

    @api.model
    def _emboux_allow_private(self):
        params = self.env["ir.config_parameter"].sudo()
        return params.get_param(ALLOW_PRIVATE) in ("1", "True", "true")

    @api.model
    @tools.ormcache()
    def _emboux_subscriptions(self):
        """``{(customer id or 0, event type)}`` some active endpoint hears:
        an event nobody hears costs its transaction no query at all."""
        self.env.cr.execute(
            """
            SELECT DISTINCT coalesce(w.partner_id, 0), t.code
              FROM emboux_mail_webhook w
              JOIN emboux_mail_webhook_emboux_mail_webhook_topic_rel r
                ON r.emboux_mail_webhook_id = w.id
              JOIN emboux_mail_webhook_topic t
                ON t.id = r.emboux_mail_webhook_topic_id
             WHERE w.active
            """
        )
        return frozenset(self.env.cr.fetchall())

    def _emboux_signing_secrets(self):
        """The secret, and the previous one while a rotation overlaps."""
        self.ensure_one()
        webhook = self.sudo()
        found = [webhook.secret]
        if (
            webhook.previous_secret
            and webhook.previous_secret_until
            and (webhook.previous_secret_until > fields.Datetime.now())
        ):
            found.append(webhook.previous_secret)
        return found

    def _emboux_rotate_secret(self):
        """A new secret, returned once; the old one signs for a day more."""
        self.ensure_one()
        secret = webhooks.new_secret()
        self.sudo().write(
            {
                "previous_secret": self.sudo().secret,
                "previous_secret_until": fields.Datetime.now() + ROTATION_OVERLAP,
                "secret": secret,
            }
        )
        self.message_post(
            body=self.env._(
                "Signing secret rotated; the previous one signs for 24 hours more."
            )
        )
        return secret

    def _emboux_disable(self, reason):
        """Stop delivering, say why, and tell the endpoint's owner."""
        for webhook in self:
            webhook.write({"active": False, "disabled_reason": reason})
            webhook.message_post(
                body=self.env._("Endpoint disabled: %(reason)s", reason=reason),
                partner_ids=webhook.partner_id.ids,
                message_type="comment",
                subtype_xmlid="mail.mt_comment",
            )

    def action_enable(self):
        self.write({"active": True, "disabled_reason": False, "failing_since": False})

    def action_show_secret(self):
        """The secret of a new endpoint, once; afterwards only a rotation
        gives one."""
        self.ensure_one()
        if self.secret_shown:
            raise ValidationError(
                self.env._("The secret was shown already: rotate it for a new one.")
            )
        self.secret_shown = True
        return self._emboux_secret_action(self.sudo().secret)

    def _emboux_secret_action(self, secret):
        return self.env["emboux.mail.secret.show"]._emboux_action(
            self.env._("Signing secret"),
            secret,
            self.env._(
                "Copy it now: it is not shown again. Receivers verify each "
                "webhook-signature with it."
            ),
        )

    def action_rotate_secret(self):
        self.ensure_one()
        self.secret_shown = True
        return self._emboux_secret_action(self._emboux_rotate_secret())
