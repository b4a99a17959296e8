import time
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from ..services import webhooks
from .emboux_mail_webhook import DISABLE_AFTER_HOURS

# Settings (ir.config_parameter): the retry schedule, in seconds after each
# failed attempt, and the receiver's time to answer
RETRY_SCHEDULE = "emboux_mail.webhook_retry_schedule"
TIMEOUT = "emboux_mail.webhook_timeout"
# how long one run of the delivery job works before it hands over
RUN_SECONDS = 50


class EmbouxMailWebhookDelivery(models.Model):
    """An event owed to one endpoint: attempted until the receiver answers
    2xx, on the specification's schedule, always with the event's id."""

    _name = "emboux.mail.webhook.delivery"
    _description = "Webhook Delivery"
    _order = "id desc"
    _rec_name = "event_id"

    event_id = fields.Many2one(
        "emboux.mail.webhook.event", required=True, readonly=True, ondelete="cascade"
    )
    webhook_id = fields.Many2one(
        "emboux.mail.webhook",
        string="Endpoint",
        required=True,
        readonly=True,
        index=True,
        ondelete="cascade",
    )
    partner_id = fields.Many2one(related="webhook_id.partner_id")
    message_id = fields.Char(related="event_id.message_id")
    topic = fields.Char(related="event_id.topic")
    state = fields.Selection(
        [("pending", "Pending"), ("delivered", "Delivered"), ("failed", "Failed")],
        required=True,
        default="pending",
        readonly=True,
        index=True,
    )
    attempt_count = fields.Integer(string="Attempts", readonly=True)
    next_attempt_at = fields.Datetime(readonly=True, index=True)
    last_status = fields.Integer(readonly=True)
    last_latency_ms = fields.Integer(string="Last Latency (ms)", readonly=True)
    last_answer = fields.Char(readonly=True)
    delivered_at = fields.Datetime(readonly=True)
    attempt_ids = fields.One2many("emboux.mail.webhook.attempt", "delivery_id")

    _sql_constraints = [
        (
            "event_webhook_uniq",
            "unique(event_id, webhook_id)",
            "An event is delivered once to each endpoint.",
        ),
    ]

    def action_resend(self):
        """Send again, with a fresh schedule (and the same event id)."""
        self.write(
            {
                "state": "pending",
                "attempt_count": 0,
                "next_attempt_at": fields.Datetime.now(),
            }
        )
        self.env.ref("emboux_mail.ir_cron_webhook_deliver")._trigger()

    # -- the delivery job ------------------------------------------------------
    @api.model
    def _cron_deliver(self, run_seconds=RUN_SECONDS):
        """Send out what is due for at most ``run_seconds``, each attempt in
        a transaction of its own (a receiver's answer is never lost with a
        later one's failure), then come back when the next one is due."""
        deadline = time.monotonic() + run_seconds
        registry = self.env.registry
        fanned_out = True
        while fanned_out:  # a batch per transaction
            with registry.cursor() as cr:
                Event = self.env(cr=cr)["emboux.mail.webhook.event"]
                fanned_out = Event._emboux_fan_out()
        settings = self._emboux_settings()
        done = 0
        while time.monotonic() < deadline:
            with registry.cursor() as cr:
                worker = self.with_env(self.env(cr=cr))
                delivery = worker._emboux_next_due()
                if delivery:
                    delivery._emboux_attempt(settings)
                else:
                    wait = worker._emboux_seconds_to_next()
            if delivery:
                done += 1
            elif wait is not None and wait < deadline - time.monotonic():
                # a retry due within this run: wait for it rather than for
                # the scheduler's next round
                time.sleep(wait)
            else:
                break
        self.env.invalidate_all()  # the deliveries changed in other cursors
        self.env["ir.cron"]._notify_progress(done=done, remaining=0)
        self._emboux_schedule_next()

    @api.model
    def _emboux_settings(self):
        params = self.env["ir.config_parameter"].sudo()
        schedule = params.get_param(RETRY_SCHEDULE)
        return {
            "schedule": tuple(float(s) for s in schedule.split(","))
            if schedule
            else webhooks.RETRY_SCHEDULE,
            "allow_private": self.env["emboux.mail.webhook"]._emboux_allow_private(),
            "disable_after": timedelta(
                hours=float(
                    params.get_param(DISABLE_AFTER_HOURS[0], DISABLE_AFTER_HOURS[1])
                )
            ),
            "timeout": float(params.get_param(TIMEOUT, webhooks.READ_TIMEOUT)),
        }

    @api.model
    def _emboux_next_due(self):
        """The next due delivery of an active endpoint, locked; another
        worker takes the next one."""
        self.env.cr.execute(
            SQL(
                """
                SELECT d.id FROM %s d
                  JOIN emboux_mail_webhook w ON w.id = d.webhook_id AND w.active
                 WHERE d.state = 'pending' AND d.next_attempt_at <= %s
                 ORDER BY d.next_attempt_at, d.id
                 LIMIT 1 FOR UPDATE OF d SKIP LOCKED
                """,
                SQL.identifier(self._table),
                fields.Datetime.now(),
            )
        )
        row = self.env.cr.fetchone()
        return self.browse(row[0]) if row else self.browse()

    def _emboux_attempt(self, settings):
        """One POST; log it, then schedule the next one or give up."""
        self.ensure_one()
        webhook = self.webhook_id
        event = self.event_id
        headers = webhooks.signed_headers(
            event.message_id, webhook._emboux_signing_secrets(), event.payload
        )
        status, latency, answer = webhooks.post(
            webhook.url,
            headers,
            event.payload,
            allow_private=settings["allow_private"],
            timeout=settings["timeout"],
        )
        succeeded = bool(status and 200 <= status < 300)
        attempts = self.attempt_count + 1
        self.env["emboux.mail.webhook.attempt"].create(
            {
                "delivery_id": self.id,
                "status": status or 0,
                "succeeded": succeeded,
                "latency_ms": latency,
                "answer": answer,
            }
        )
        values = {
            "attempt_count": attempts,
            "last_status": status or 0,
            "last_latency_ms": latency,
            "last_answer": answer,
        }
        now = fields.Datetime.now()
        if succeeded:
            values.update(state="delivered", delivered_at=now, next_attempt_at=False)
            if webhook.failing_since:
                webhook.failing_since = False
        else:
            delay = webhooks.retry_delay(attempts, settings["schedule"])
            if delay is None:
                values.update(state="failed", next_attempt_at=False)
            else:
                values["next_attempt_at"] = now + timedelta(seconds=delay)
            self._emboux_endpoint_failed(status, now, settings)
        self.write(values)

    def _emboux_endpoint_failed(self, status, now, settings):
        webhook = self.webhook_id
        if status == 410:
            webhook._emboux_disable(
                self.env._("the receiver answered 410 Gone: it wants no more events")
            )
        elif not webhook.failing_since:
            webhook.failing_since = now
        elif now - webhook.failing_since > settings["disable_after"]:
            webhook._emboux_disable(
                self.env._(
                    "every delivery failed since %(since)s",
                    since=fields.Datetime.to_string(webhook.failing_since),
                )
            )

    @api.model
    def _emboux_next_due_at(self):
        """When the next pending delivery of an active endpoint is due."""
        self.env.cr.execute(
            SQL(
                """
                SELECT min(d.next_attempt_at) FROM %s d
                  JOIN emboux_mail_webhook w ON w.id = d.webhook_id AND w.active
                 WHERE d.state = 'pending'
                """,
                SQL.identifier(self._table),
            )
        )
        return self.env.cr.fetchone()[0]

    @api.model
    def _emboux_seconds_to_next(self):
        due = self._emboux_next_due_at()
        if due is None:
            return None
        return max((due - fields.Datetime.now()).total_seconds(), 0.0)

    @api.model
    def _emboux_schedule_next(self):
        """Run again when the next pending delivery is due."""
        due = self._emboux_next_due_at()
        if due:
            cron = self.env.ref("emboux_mail.ir_cron_webhook_deliver")
            cron._trigger(at=max(due, fields.Datetime.now()))
