import re
from contextlib import closing
from unittest.mock import patch

from odoo import http, sql_db
from odoo.service import db
from odoo.tools import SQL, config, mute_logger

from ..models import ir_http
from .common import EmbouxApiCase


class TestDatabase(EmbouxApiCase):
    """The API answers only from the one database its URL serves."""

    def test_single_database_answers(self):
        response = self.api("GET", "/domains/", token=self.MASTER)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(
            ir_http.served_databases(self.env.cr, self.base_url().split("//")[1]),
            [self.env.cr.dbname],
        )

    def test_several_databases_are_refused(self):
        """As when a session cookie picks one database among several that
        the URL could serve (Odoo alone would answer from that one)."""
        dbs = [self.env.cr.dbname, "other"]
        with patch.object(ir_http, "served_databases", return_value=dbs):
            # straight through the opener: this 5xx is the expected answer
            response = self.opener.get(
                self.base_url() + "/domains/",
                headers={"Authorization": f"Bearer {self.MASTER}"},
                timeout=60,
            )
        self.assertEqual(response.status_code, 503)
        self.assertEqual(
            response.json(),
            {"detail": "The API needs one database per URL: set db_name or dbfilter"},
        )

    def test_every_process_sees_a_new_database_at_once(self):
        """No list kept in a process: the request after a database appears
        is refused, whichever worker or node serves it; and the list is the
        one Odoo's own listing gives."""
        host = self.base_url().split("//")[1]
        name = self.env.cr.dbname + "_another"
        options = {"db_name": "", "dbfilter": f"^{self.env.cr.dbname}(_another)?$"}
        server = sql_db.db_connect("postgres")
        with patch.dict(config.options, options), closing(server.cursor()) as admin:
            admin._cnx.autocommit = True
            admin.execute(SQL("DROP DATABASE IF EXISTS %s", SQL.identifier(name)))
            before = self._served(host)
            admin.execute(SQL("CREATE DATABASE %s", SQL.identifier(name)))
            try:
                after = self._served(host)
                listed = http.db_filter(db.list_dbs(True), host)
            finally:
                admin.execute(SQL("DROP DATABASE %s", SQL.identifier(name)))
        self.assertEqual(before, [self.env.cr.dbname])
        self.assertEqual(after, sorted([self.env.cr.dbname, name]))
        self.assertEqual(after, listed)

    def test_a_filter_naming_the_database_needs_no_catalog(self):
        """``--db-filter=^name$`` serves that one database, whatever else
        the cluster holds; a filter that is not one literal name still asks."""
        host = self.base_url().split("//")[1]
        literal = {"db_name": "", "dbfilter": f"^{re.escape(self.env.cr.dbname)}$"}
        with patch.dict(config.options, literal), self.assertQueryCount(0):
            self.assertEqual(
                ir_http.served_databases(self.env.cr, host), [self.env.cr.dbname]
            )
        pattern = {"db_name": "", "dbfilter": f"^{self.env.cr.dbname}.*$"}
        with patch.dict(config.options, pattern), self.assertQueryCount(1):
            self.assertIn(
                self.env.cr.dbname, ir_http.served_databases(self.env.cr, host)
            )

    def _served(self, host):
        """What a new request's cursor reads (this test's own transaction
        still sees its first snapshot)."""
        with closing(sql_db.db_connect(self.env.cr.dbname).cursor()) as cr:
            return ir_http.served_databases(cr, host)

    def test_reads_stay_on_the_primary(self):
        """Odoo sends read-only routes to --db_replica_host; the API's reads
        must see what the same client just wrote, so none is read-only."""
        routes = [
            rule.endpoint.routing
            for rule in self.env["ir.http"].routing_map().iter_rules()
            if rule.endpoint.routing.get("emboux_api")
        ]
        self.assertTrue(routes)
        self.assertFalse([r for r in routes if r.get("readonly")])

    def test_unknown_methods_and_paths_answer_json(self):
        """As FastAPI does: JSON for a wrong method (with ``Allow``) and for
        an unknown path under the API's collections; Odoo's own pages
        elsewhere."""
        wrong = self.api("GET", "/domains/some.example", token=self.MASTER)
        self.assertEqual(wrong.status_code, 405)
        self.assertEqual(wrong.json(), {"detail": "Method Not Allowed"})
        self.assertIn("DELETE", wrong.headers["Allow"])
        unknown = self.api("GET", "/users/a@b.example/x/y", token=self.MASTER)
        self.assertEqual(unknown.status_code, 404)
        self.assertEqual(unknown.json(), {"detail": "Not Found"})
        elsewhere = self.api("GET", "/no-such-page")
        self.assertEqual(elsewhere.status_code, 404)
        self.assertIn("text/html", elsewhere.headers["Content-Type"])

    def test_errors_no_route_answered_are_json(self):
        """A unique index met by a concurrent change, and a bug: JSON as
        well, the first as a refusal with its constraint's message, the
        second as 500 that tells nothing of its cause."""
        Api = type(self.env["emboux.mail.api"])

        def clash(*args, **kwargs):
            http.request.env.cr.execute(
                "UPDATE res_users SET login = 'admin' WHERE id = 1"
            )

        for effect, status in ((clash, 400), (RuntimeError("internal detail"), 500)):
            with (
                self.subTest(status=status),
                patch.object(Api, "_api_domain_list", side_effect=effect),
                mute_logger("odoo.http", "odoo.sql_db"),
            ):
                response = self.opener.get(
                    self.base_url() + "/domains/",
                    headers={"Authorization": f"Bearer {self.MASTER}"},
                    timeout=60,
                )
            self.assertEqual(response.status_code, status)
            self.assertEqual(response.headers["Content-Type"], "application/json")
            detail = response.json()["detail"]
            if status == 500:
                self.assertEqual(detail, "Internal Server Error")
            else:
                self.assertIn("same login", detail)
