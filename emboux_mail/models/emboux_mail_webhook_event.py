from datetime import timedelta

from odoo import SUPERUSER_ID, api, fields, models
from odoo.tools import SQL

from ..services import webhooks

# how long events and their delivery logs are kept (ir.config_parameter)
KEEP_DAYS = ("emboux_mail.webhook_keep_days", 30)


class EmbouxMailWebhookEvent(models.Model):
    """One lifecycle event, written in the transaction that made it (one
    INSERT, and only when some endpoint hears its type), delivered after
    that transaction committed: a change that is rolled back sends nothing,
    and a committed one is never lost."""

    _name = "emboux.mail.webhook.event"
    _description = "Webhook Event"
    _order = "id desc"
    _rec_name = "message_id"

    message_id = fields.Char(
        string="Event ID", required=True, readonly=True, index=True
    )
    topic = fields.Char(string="Type", required=True, readonly=True, index=True)
    partner_id = fields.Many2one(
        "res.partner", string="Customer", readonly=True, index=True
    )
    payload = fields.Text(readonly=True)
    fanned_out = fields.Boolean(readonly=True, index=True)
    company_id = fields.Many2one(
        "res.company", readonly=True, default=lambda self: self.env.company
    )

    @api.model
    def _emboux_emit(self, topic, records, **extra):
        """Queue event ``topic`` for each of ``records`` (each has a
        customer, ``partner_id``, and shows itself as the API does,
        ``_emboux_api_dict``) that an endpoint hears; ``extra`` is what else
        the event tells. Nothing is read when nobody listens."""
        subscriptions = self.env["emboux.mail.webhook"]._emboux_subscriptions()
        if not any(topic == heard for _partner, heard in subscriptions):
            return self.browse()
        events = self.browse()
        for record in records:
            partner = record.partner_id
            if {(0, topic), (partner.id, topic)} & subscriptions:
                # a domain shows its state too, as GET /domains/ does
                show = getattr(record, "_emboux_api_item", record._emboux_api_dict)
                data = {"object": show(), **extra}
                events |= self._emboux_queue(topic, partner, data)
        return events

    @api.model
    def _emboux_queue(self, topic, partner, data):
        now = fields.Datetime.now()
        payload = webhooks.body(
            topic,
            now.isoformat(timespec="seconds"),
            {"partner_ref": partner.emboux_partner_ref or None, **data},
        )
        event = self.sudo().create(
            {
                "message_id": webhooks.new_message_id(),
                "topic": topic,
                "partner_id": partner.id,
                "payload": payload,
            }
        )
        callbacks = self.env.cr.postcommit
        if not callbacks.data.get("emboux_webhook_wake"):
            callbacks.data["emboux_webhook_wake"] = True
            callbacks.add(self._emboux_wake_worker)
        return event

    def _emboux_wake_worker(self):
        """After the commit: the delivery job runs now, not at its next
        scheduled time."""
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env.ref("emboux_mail.ir_cron_webhook_deliver")._trigger()

    @api.model
    def _emboux_fan_out(self, batch=1000):
        """One delivery per new event and endpoint hearing it, in SQL: an
        event's endpoints are those active when it is sent out."""
        cr = self.env.cr
        cr.execute(
            SQL(
                "SELECT id FROM %s WHERE fanned_out IS NOT TRUE ORDER BY id "
                "LIMIT %s FOR UPDATE SKIP LOCKED",
                SQL.identifier(self._table),
                batch,
            )
        )
        ids = [row[0] for row in cr.fetchall()]
        if not ids:
            return 0
        cr.execute(
            SQL(
                """
                INSERT INTO emboux_mail_webhook_delivery
                       (event_id, webhook_id, state, attempt_count,
                        next_attempt_at, create_uid, create_date, write_uid,
                        write_date)
                SELECT e.id, w.id, 'pending', 0, %(now)s, %(uid)s, %(now)s,
                       %(uid)s, %(now)s
                  FROM emboux_mail_webhook_event e
                  JOIN emboux_mail_webhook_topic t ON t.code = e.topic
                  JOIN emboux_mail_webhook_emboux_mail_webhook_topic_rel r
                    ON r.emboux_mail_webhook_topic_id = t.id
                  JOIN emboux_mail_webhook w
                    ON w.id = r.emboux_mail_webhook_id AND w.active
                   AND (w.partner_id IS NULL OR w.partner_id = e.partner_id)
                 WHERE e.id = ANY(%(ids)s)
                ON CONFLICT (event_id, webhook_id) DO NOTHING
                """,
                now=fields.Datetime.now(),
                uid=self.env.uid,
                ids=ids,
            )
        )
        cr.execute(
            SQL(
                "UPDATE %s SET fanned_out = TRUE WHERE id = ANY(%s)",
                SQL.identifier(self._table),
                ids,
            )
        )
        self.env["emboux.mail.webhook.delivery"].invalidate_model()
        return len(ids)

    @api.autovacuum
    def _gc_events(self):
        """Drop events, their deliveries and logs after the days kept."""
        params = self.env["ir.config_parameter"].sudo()
        days = int(params.get_param(KEEP_DAYS[0], KEEP_DAYS[1]) or 0)
        if days:
            limit = fields.Datetime.now() - timedelta(days=days)
            self.sudo().search([("create_date", "<", limit)]).unlink()
