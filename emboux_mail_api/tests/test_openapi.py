"""/openapi.json (§A.2, §B.2.11): public, complete, roles marked."""

from ..controllers.main import ROUTES
from .common import EmbouxApiCase

# method, path, master only, takes a body: from the contract, not the code
CONTRACT = [
    ("POST", "/domains/", False, True),
    ("GET", "/domains/", False, False),
    ("DELETE", "/domains/{domain_name}", False, False),
    ("POST", "/domains/{domain_name}/register-subdomain", False, False),
    ("POST", "/domains/{domain_name}/verify", False, False),
    ("PUT", "/domains/{domain_name}/parent", True, True),
    ("GET", "/domains/{domain_name}/dns-check", False, False),
    ("PUT", "/domains/{domain_name}/owner", True, True),
    ("PUT", "/domains/{domain_name}/suspend", False, False),
    ("PUT", "/domains/{domain_name}/activate", False, False),
    ("GET", "/domains/{domain_name}/outbound", False, False),
    ("PUT", "/domains/{domain_name}/outbound", False, True),
    ("POST", "/domains/{domain_name}/outbound/increment", True, True),
    ("GET", "/domains/{domain_name}/transfer", False, False),
    ("PUT", "/domains/{domain_name}/transfer", True, True),
    ("GET", "/domains/{domain_name}/retention", False, False),
    ("PUT", "/domains/{domain_name}/retention", False, True),
    ("POST", "/users/", False, True),
    ("GET", "/users/", False, False),
    ("PUT", "/users/{email}", False, True),
    ("DELETE", "/users/{email}", False, False),
    ("GET", "/users/{email}/quota", False, False),
    ("PUT", "/users/{email}/quota", False, True),
    ("POST", "/aliases/", False, True),
    ("GET", "/aliases/", False, False),
    ("DELETE", "/aliases/{source}", False, False),
    ("POST", "/api-keys/", True, True),
    ("PUT", "/api-keys/{token}", True, True),
    ("DELETE", "/api-keys/{token}", True, False),
    ("GET", "/api-keys/{token}/usage", True, False),
    ("POST", "/webhooks/", True, True),
    ("GET", "/webhooks/", True, False),
    ("GET", "/webhooks/{webhook_id}", True, False),
    ("PUT", "/webhooks/{webhook_id}", True, True),
    ("DELETE", "/webhooks/{webhook_id}", True, False),
]
# decided error texts (§B.1, §B.2 and the brief's decisions) per operation
ERRORS = {
    ("POST", "/domains/"): ["Domain already exists", "Domain quota exceeded"],
    ("POST", "/domains/{domain_name}/register-subdomain"): [
        "Name is not a subdomain",
        "Parent domain is not a verified wildcard",
        "Domain not found",
    ],
    ("PUT", "/domains/{domain_name}/parent"): [
        "Master token required",
        "Domain not found",
        "Parent domain not found",
    ],
    ("PUT", "/domains/{domain_name}/owner"): [
        "No active api_key for partner_ref=",
        "Master token required",
        "Domain not found",
    ],
    ("GET", "/domains/{domain_name}/outbound"): ["Domain not found"],
    ("PUT", "/domains/{domain_name}/outbound"): [
        "Master token required",
        "Outbound limit exceeds plan maximum",
        "Domain not found",
    ],
    ("POST", "/domains/{domain_name}/outbound/increment"): [
        "Master token required",
        "Domain not found",
    ],
    ("GET", "/domains/{domain_name}/transfer"): ["Domain not found"],
    ("PUT", "/domains/{domain_name}/transfer"): [
        "Master token required",
        "Domain not found",
    ],
    ("GET", "/domains/{domain_name}/retention"): ["Domain not found"],
    ("PUT", "/domains/{domain_name}/retention"): [
        "Retention exceeds plan maximum (N days)",
        "Domain not found",
    ],
    ("POST", "/users/"): [
        "Email already exists",
        "Mailbox quota exceeded for this domain",
        "Domain not found",
    ],
    ("PUT", "/users/{email}"): ["Mailbox not found"],
    ("POST", "/aliases/"): [
        "Alias source already exists",
        "Email does not belong to domain",
        "Alias quota exceeded",
        "Domain not found",
    ],
    ("DELETE", "/aliases/{source}"): ["Alias not found"],
    ("POST", "/api-keys/"): ["API key already exists", "Master token required"],
    ("PUT", "/api-keys/{token}"): ["API key not found"],
    ("POST", "/webhooks/"): [
        "Master token required",
        "Customer not found",
        "Unknown event type",
        "Webhook URL refused",
    ],
    ("GET", "/webhooks/{webhook_id}"): ["Webhook not found"],
    ("PUT", "/webhooks/{webhook_id}"): [
        "Webhook not found",
        "Unknown event type",
        "Webhook URL refused",
    ],
    ("DELETE", "/webhooks/{webhook_id}"): ["Webhook not found"],
}


class TestOpenapi(EmbouxApiCase):
    def setUp(self):
        super().setUp()
        response = self.api("GET", "/openapi.json")
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.headers["Content-Type"], "application/json")
        self.document = response.json()
        self.paths = self.document["paths"]

    def _operation(self, method, path):
        self.assertIn(path, self.paths)
        self.assertIn(method.lower(), self.paths[path])
        return self.paths[path][method.lower()]

    def test_contract_routes(self):
        self.assertTrue(self.document["openapi"].startswith("3."))
        for method, path, master, has_body in CONTRACT:
            with self.subTest(method=method, path=path):
                operation = self._operation(method, path)
                role = operation.get("x-required-role")
                self.assertEqual(role, "master" if master else None)
                self.assertEqual("requestBody" in operation, has_body)
                if has_body:
                    content = operation["requestBody"]["content"]
                    self.assertIn("properties", content["application/json"]["schema"])

    def test_every_declared_route(self):
        declared = {(route.method, route.path) for route in ROUTES}
        self.assertEqual(declared, {(m, p) for m, p, _master, _body in CONTRACT})
        operations = {
            (method.upper(), path)
            for path, item in self.paths.items()
            for method in item
        }
        self.assertEqual(operations, declared)

    def test_documented_errors(self):
        for (method, path), details in ERRORS.items():
            operation = self._operation(method, path)
            text = " ".join(r["description"] for r in operation["responses"].values())
            for detail in details:
                with self.subTest(method=method, path=path, detail=detail):
                    self.assertIn(detail, text)

    def test_success_status_and_lists(self):
        for method, path, status in (
            ("POST", "/domains/", "201"),
            ("DELETE", "/domains/{domain_name}", "204"),
            ("POST", "/users/", "201"),
            ("POST", "/aliases/", "201"),
            ("POST", "/api-keys/", "201"),
            ("PUT", "/users/{email}/quota", "200"),
        ):
            with self.subTest(method=method, path=path):
                self.assertIn(status, self._operation(method, path)["responses"])
        for path in ("/domains/", "/users/", "/aliases/"):
            ok = self._operation("GET", path)["responses"]["200"]
            self.assertIn("X-Total-Count", ok["headers"])
            names = {p["name"] for p in self._operation("GET", path)["parameters"]}
            self.assertLessEqual({"limit", "offset"}, names)

    def test_storage_schemas(self):
        """Retention answers its object; the quota tells the use."""
        schemas = self.document["components"]["schemas"]
        for method in ("GET", "PUT"):
            operation = self._operation(method, "/domains/{domain_name}/retention")
            ok = operation["responses"]["200"]["content"]["application/json"]
            self.assertEqual(ok["schema"]["$ref"], "#/components/schemas/Retention")
        put = self._operation("PUT", "/domains/{domain_name}/retention")
        body = put["requestBody"]["content"]["application/json"]["schema"]
        self.assertEqual(body["required"], ["retention_days"])
        self.assertEqual(body["properties"]["retention_days"]["minimum"], 0)
        self.assertEqual(
            set(schemas["Retention"]["properties"]), {"name", "retention_days"}
        )
        self.assertEqual(schemas["Quota"]["properties"]["used_mb"], {"type": "number"})

    def test_outbound_schemas(self):
        """The outbound routes answer their documented objects; the
        increment's body is optional and documents its defaults, and the
        settings' enums are listed."""
        schemas = self.document["components"]["schemas"]
        for method, path, schema in (
            ("GET", "/domains/{domain_name}/outbound", "Outbound"),
            ("PUT", "/domains/{domain_name}/outbound", "Outbound"),
            ("POST", "/domains/{domain_name}/outbound/increment", "OutboundIncrement"),
            ("GET", "/domains/{domain_name}/transfer", "Transfer"),
            ("PUT", "/domains/{domain_name}/transfer", "Transfer"),
        ):
            with self.subTest(method=method, path=path):
                ok = self._operation(method, path)["responses"]["200"]
                ref = ok["content"]["application/json"]["schema"]["$ref"]
                self.assertEqual(ref, f"#/components/schemas/{schema}")
                self.assertIn(schema, schemas)
        self.assertEqual(
            schemas["Outbound"]["properties"]["bounce_rate"], {"type": "number"}
        )
        self.assertEqual(
            set(schemas["OutboundIncrement"]["properties"]),
            {"name", "outbound_sent_today", "outbound_sent_month", "allowed", "reason"},
        )
        increment = self._operation("POST", "/domains/{domain_name}/outbound/increment")
        body = increment["requestBody"]
        self.assertFalse(body["required"])
        properties = body["content"]["application/json"]["schema"]["properties"]
        self.assertEqual(properties["recipients"]["default"], 1)
        self.assertEqual(properties["recipients"]["minimum"], 1)
        self.assertEqual(properties["size"]["default"], 0)
        outbound = self._operation("PUT", "/domains/{domain_name}/outbound")
        self.assertTrue(outbound["requestBody"]["required"])
        schema = outbound["requestBody"]["content"]["application/json"]["schema"]
        self.assertEqual(schema["required"], [])
        self.assertEqual(
            schema["properties"]["outbound_tier"]["enum"], ["shared", "dedicated"]
        )
        self.assertEqual(
            schema["properties"]["outbound_enforcement"]["enum"], ["soft", "hard"]
        )
        transfer = self._operation("PUT", "/domains/{domain_name}/transfer")
        schema = transfer["requestBody"]["content"]["application/json"]["schema"]
        self.assertEqual(schema["required"], ["transfer_monthly_mb"])
