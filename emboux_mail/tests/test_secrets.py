"""Secrets of the connected mode: tenant tokens encrypted with a key that is
not in the database, masked in stored errors and in log lines; a
neutralized copy of the database stops talking to the upstream."""

import logging
import os
from unittest.mock import patch

from odoo.modules import neutralize
from odoo.tests import tagged
from odoo.tools import config

from ..exceptions import EmbouxUserError
from ..services import emboux_client as ec
from ..services import encryption
from ..services.redaction import RedactingFilter, install_log_filter, redact
from .test_sync import SECRET_KEY, ConnectedCase

TOKEN = "emb_tenant_9f8e7d6c5b4a39281706"


class Capture(logging.Handler):
    """Keeps each record as its handler would write it."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))


@tagged("post_install", "-at_install")
class TestSecrets(ConnectedCase):
    def make_key(self, token=TOKEN):
        return self.Key.create({"partner_id": self.tenant.id, "token": token})

    def without_secret_key(self):
        """Neither the environment nor the configuration file has a key."""
        environ = patch.dict(os.environ)
        environ.start()
        self.addCleanup(environ.stop)
        os.environ.pop("EMBOUX_SECRET_KEY", None)
        self.startPatcher(patch.dict(config.options, {"emboux_secret_key": ""}))

    def test_token_encrypted_yet_the_outbox_addresses_the_key(self):
        key = self.make_key()
        self.commit()
        method, args = self.upstream.calls[-1]
        self.assertEqual((method, args[0]), ("create_api_key", TOKEN))
        # the upstream cannot be reached: the change waits with its token
        self.upstream.fail["update_api_key"] = ec.EmbouxUnavailable(
            f"PUT /api-keys/{TOKEN}: no answer (Authorization: Bearer {TOKEN})"
        )
        key.action_revoke()
        self.commit()
        event = self.Event.search([("operation", "=", "key_update")])
        self.assertEqual(event.state, "pending")
        self.assertTrue(event.upstream_token_encrypted)
        self.assertIn("PUT /api-keys/emb_…: no answer", event.last_error)
        self.assertIn("Bearer emb_…", key.sync_error)
        self.assertNotStoredAnywhere(TOKEN)
        # back: the cron decrypts it to address the key, then forgets it
        self.upstream.fail.clear()
        key.action_sync_retry()
        self.Event._cron_deliver()
        self.assertEqual(event.state, "done")
        self.assertEqual(self.upstream.calls[-1], ("update_api_key", (TOKEN,)))
        self.assertFalse(event.upstream_token_encrypted)
        self.assertNotStoredAnywhere(TOKEN)

    def test_secret_key_from_the_configuration_file(self):
        self.without_secret_key()
        self.startPatcher(patch.dict(config.options, {"emboux_secret_key": "cfg"}))
        key = self.make_key()
        self.assertEqual(
            encryption.decrypt("cfg", key.sudo().upstream_token_encrypted), TOKEN
        )

    def test_no_secret_key_is_refused_clearly(self):
        self.without_secret_key()
        with self.assertRaises(EmbouxUserError) as raised:
            self.make_key()
        self.assertIn("EMBOUX_SECRET_KEY", str(raised.exception))
        # standalone (no upstream): no token to keep, no key needed
        self.env["ir.config_parameter"].sudo().set_param("emboux_mail.upstream_url", "")
        self.assertTrue(self.make_key())

    def test_another_key_cannot_decrypt(self):
        key = self.make_key()
        self.commit()
        self.startPatcher(patch.dict(os.environ, {"EMBOUX_SECRET_KEY": "other"}))
        key.action_revoke()
        error = self.commit_refused(EmbouxUserError)
        self.assertIn("cannot be decrypted", str(error))
        # the cron refuses the change, visibly, instead of failing
        self.Event._cron_deliver()
        event = self.Event.search([("operation", "=", "key_update")])
        self.assertEqual(event.state, "error")
        self.assertIn("cannot be decrypted", event.last_error)

    def test_fernet_key_used_as_is(self):
        fernet_key = "A" * 43 + "="
        ciphertext = encryption.encrypt(fernet_key, TOKEN)
        self.assertEqual(encryption.decrypt(fernet_key, ciphertext), TOKEN)
        with self.assertRaises(encryption.UnreadableSecret):
            encryption.decrypt(SECRET_KEY, ciphertext)

    def test_reconcile_report_is_masked(self):
        self.upstream.fail["list_domains"] = ec.EmbouxUnavailable(
            f"GET /api-keys/{TOKEN}/usage: no answer"
        )
        run = self.env["emboux.mail.reconcile"]._emboux_reconcile()
        self.assertEqual(run.state, "failed")
        self.assertIn("/api-keys/emb_…/usage", run.report)
        self.assertNotIn(TOKEN, run.report)

    def test_redact(self):
        cases = [
            (
                f'"PUT /api-keys/{TOKEN} HTTP/1.1" 200',
                '"PUT /api-keys/emb_… HTTP/1.1" 200',
            ),
            (f"/api-keys/{TOKEN}/usage?since=x", "/api-keys/emb_…/usage?since=x"),
            ("url: /api-keys/tok%2Ben%3D (Caused", "url: /api-keys/tok%… (Caused"),
            (
                f"{{'Authorization': 'Bearer {TOKEN}'}}",
                "{'Authorization': 'Bearer emb_…'}",
            ),
            (f"DELETE /api-keys/{TOKEN}: 404", "DELETE /api-keys/emb_…: 404"),
            ("PUT /api-keys/a:b:c:d:e HTTP/1.1", "PUT /api-keys/a:b:… HTTP/1.1"),
            ("POST /api-keys/ HTTP/1.1", "POST /api-keys/ HTTP/1.1"),
        ]
        for text, masked in cases:
            self.assertEqual(redact(text), masked)
            self.assertEqual(redact(masked), masked)

    def test_log_lines_are_masked(self):
        root = logging.getLogger()
        # the addon's import put the filter on Odoo's handlers
        self.assertTrue(root.handlers)
        for handler in root.handlers:
            self.assertTrue(
                any(isinstance(f, RedactingFilter) for f in handler.filters)
            )
        capture = Capture()
        root.addHandler(capture)
        self.addCleanup(root.removeHandler, capture)
        install_log_filter()
        install_log_filter()
        self.assertEqual(len(capture.filters), 1)
        werkzeug = logging.getLogger("werkzeug")
        self.addCleanup(werkzeug.setLevel, werkzeug.level)
        werkzeug.setLevel(logging.INFO)
        # werkzeug's access log line, as its request handler logs it
        werkzeug.info(
            '%s - - [%s] "%s" %s %s',
            "127.0.0.1",
            "29/Nov/2026 19:48:21",
            f"PUT /api-keys/{TOKEN} HTTP/1.1",
            "200",
            "-",
        )
        [line] = [line for line in capture.lines if "/api-keys/" in line]
        self.assertEqual(
            line,
            '127.0.0.1 - - [29/Nov/2026 19:48:21] "PUT /api-keys/emb_… HTTP/1.1" 200 -',
        )

    def test_tracebacks_in_log_lines_are_masked(self):
        logger = logging.getLogger("odoo.addons.emboux_mail.tests.quiet")
        self.addCleanup(setattr, logger, "propagate", logger.propagate)
        logger.propagate = False  # the traceback stays out of the test log
        self.addCleanup(logger.setLevel, logger.level)
        logger.setLevel(logging.INFO)
        capture = Capture()
        logger.addHandler(capture)
        self.addCleanup(logger.removeHandler, capture)
        install_log_filter(logger)
        try:
            raise ec.EmbouxNotFound(f"DELETE /api-keys/{TOKEN}: 404", 404)
        except ec.EmbouxNotFound:
            logger.info("key not deleted", exc_info=True)
        [line] = capture.lines
        self.assertIn("DELETE /api-keys/emb_…: 404", line)
        self.assertNotIn(TOKEN, line)

    def test_neutralized_copy_stops_calling_the_upstream(self):
        key = self.make_key()
        self.upstream.fail["create_api_key"] = ec.EmbouxUnavailable("down")
        self.commit()
        cr = self.env.cr
        self.assertIn("emboux_mail", neutralize.get_installed_modules(cr))
        for query in neutralize.get_neutralization_queries(["emboux_mail"]):
            cr.execute(query)
        self.env.invalidate_all()
        self.env.registry.clear_cache()
        params = self.env["ir.config_parameter"].sudo()
        self.assertFalse(params.get_param("emboux_mail.upstream_url"))
        self.assertFalse(params.get_param("emboux_mail.upstream_token"))
        self.assertFalse(self.Key._emboux_sync_configured())
        for xmlid in ("ir_cron_emboux_mail_sync", "ir_cron_emboux_mail_reconcile"):
            self.assertFalse(self.env.ref(f"emboux_mail.{xmlid}").active)
        self.assertFalse(key.sudo().upstream_token_encrypted)
        self.assertFalse(self.Event.search([("upstream_token_encrypted", "!=", False)]))
