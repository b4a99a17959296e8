import math

from odoo import api, fields, models

MAX_FAILURES = 10
COOLDOWN_SECONDS = 60


class EmbouxMailApiAuthFailure(models.Model):
    """Failed authentications per client address: the REST API's throttle.

    Like Odoo's own login cooldown, but kept in PostgreSQL rather than in a
    worker's memory, so that every worker and server counts the same
    failures. Rows are written after the request, from their own cursor
    (the request itself rolls back).
    """

    _name = "emboux.mail.api.auth.failure"
    _description = "EmBoux API Failed Authentications"
    _order = "last_failure_at desc"
    _log_access = False

    address = fields.Char(string="IP Address", required=True, readonly=True)
    failures = fields.Integer(readonly=True)
    last_failure_at = fields.Datetime(readonly=True, index=True)

    _sql_constraints = [
        ("address_uniq", "unique(address)", "One row per address."),
    ]

    @api.model
    def _emboux_limits(self):
        """(failures before the cooldown, cooldown in seconds), from the
        system parameters ``emboux_mail_api.auth_failures_max`` and
        ``emboux_mail_api.auth_cooldown_seconds``."""
        params = self.env["ir.config_parameter"].sudo()

        def number(key, default):
            value = params.get_param(f"emboux_mail_api.{key}") or ""
            return int(value) if value.isdigit() and int(value) > 0 else default

        return (
            number("auth_failures_max", MAX_FAILURES),
            number("auth_cooldown_seconds", COOLDOWN_SECONDS),
        )

    @api.model
    def _emboux_retry_after(self, address):
        """Seconds before ``address`` may fail again unthrottled; 0 when it
        is not throttled."""
        most, cooldown = self._emboux_limits()
        self.env.cr.execute(
            "SELECT failures, EXTRACT(EPOCH FROM (now() at time zone 'utc') "
            "- last_failure_at) FROM emboux_mail_api_auth_failure "
            "WHERE address = %s",
            [address],
        )
        row = self.env.cr.fetchone()
        if not row or row[0] < most or row[1] >= cooldown:
            return 0
        return max(1, math.ceil(cooldown - row[1]))

    @api.model
    def _emboux_record_failure(self, registry, address):
        """Count one failure of ``address`` in a cursor of its own; a
        failure after a quiet cooldown starts the count again."""
        _most, cooldown = self._emboux_limits()
        with registry.cursor() as cr:
            cr.execute(
                """
                INSERT INTO emboux_mail_api_auth_failure AS f
                       (address, failures, last_failure_at)
                VALUES (%s, 1, now() at time zone 'utc')
                ON CONFLICT (address) DO UPDATE SET
                       failures = CASE
                           WHEN f.last_failure_at < (now() at time zone 'utc')
                                - make_interval(secs => %s) THEN 1
                           ELSE f.failures + 1 END,
                       last_failure_at = now() at time zone 'utc'
                """,
                [address, cooldown],
            )

    @api.autovacuum
    def _gc_old_failures(self):
        """Forget addresses quiet for a day."""
        self.env.cr.execute(
            "DELETE FROM emboux_mail_api_auth_failure "
            "WHERE last_failure_at < (now() at time zone 'utc') - interval '1 day'"
        )
