"""A small client of the EmBoux REST API for the end-to-end tests."""

import requests


class Api:
    """Calls ``base_url`` with one Bearer token; returns ``requests`` responses."""

    def __init__(self, base_url, token):
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def __call__(self, method, path, json=None, **kwargs):
        return self.session.request(
            method, self.base_url + path, json=json, timeout=120, **kwargs
        )

    def ok(self, method, path, json=None, status=200):
        """The JSON of a call that must answer ``status``."""
        response = self(method, path, json)
        assert response.status_code == status, (method, path, response.text)
        return response.json() if response.content else None
