"""A minimal JSON-RPC client for Odoo's external API (``/jsonrpc``)."""

import itertools

import requests

_ids = itertools.count(1)


class RpcError(Exception):
    """An Odoo error answered over JSON-RPC; ``str()`` is its message."""

    def __init__(self, error):
        data = error.get("data") or {}
        super().__init__(data.get("message") or error.get("message"))
        self.name = data.get("name", "")


class OdooRpc:
    def __init__(self, url, db, login="admin", password="admin"):
        self.url = f"{url}/jsonrpc"
        self.db = db
        self.password = password
        self.session = requests.Session()
        self.uid = self._call("common", "login", db, login, password)

    def _call(self, service, method, *args):
        payload = {
            "jsonrpc": "2.0",
            "method": "call",
            "id": next(_ids),
            "params": {"service": service, "method": method, "args": args},
        }
        reply = self.session.post(self.url, json=payload, timeout=120).json()
        if "error" in reply:
            raise RpcError(reply["error"])
        return reply.get("result")  # absent when the method returned None

    def call(self, model, method, *args, **kwargs):
        return self._call(
            "object",
            "execute_kw",
            self.db,
            self.uid,
            self.password,
            model,
            method,
            list(args),
            kwargs,
        )

    def run_cron(self, module, name):
        """Run the scheduled action ``module.name`` now, as Odoo's scheduler
        would."""
        [cron] = self.call(
            "ir.model.data",
            "search_read",
            [("module", "=", module), ("name", "=", name)],
            ["res_id"],
        )
        self.call("ir.cron", "method_direct_trigger", [cron["res_id"]])
