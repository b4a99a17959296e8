from unittest.mock import patch

from ..models import ir_http
from .common import EmbouxApiCase


class TestDatabase(EmbouxApiCase):
    """The API answers only from the one database its URL serves."""

    def tearDown(self):
        ir_http._databases.clear()
        super().tearDown()

    def test_single_database_answers(self):
        ir_http._databases.clear()
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
