from unittest.mock import patch

from ..models import ir_http
from .common import EmbouxApiCase


class TestDatabase(EmbouxApiCase):
    """The API answers only from the one database its URL serves."""

    def test_single_database_answers(self):
        response = self.api("GET", "/domains/", token=self.MASTER)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(
            ir_http.served_databases(self.base_url().split("//")[1]),
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
        is refused, whichever worker or node serves it."""
        host = self.base_url().split("//")[1]
        one, two = [self.env.cr.dbname], [self.env.cr.dbname, "other"]
        with patch.object(ir_http.http, "db_list", side_effect=[one, two]):
            self.assertEqual(ir_http.served_databases(host), one)
            self.assertEqual(ir_http.served_databases(host), two)

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
