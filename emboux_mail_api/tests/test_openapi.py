"""/openapi.json (§A.2, §B.2.11): public, complete, roles marked, and
exactly true: what the validation enforces is published, what may be null
is marked so, and real answers of every route match it."""

import re

import jsonschema_rs

from odoo.addons.emboux_mail.services import names, passwords

from ..controllers.main import ROUTES
from ..services import validation
from ..services.openapi import anchored
from ..services.validation import RequestInvalid, parse_datetime, validate
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


# names every value of a pattern must be (and those of none), checked
# against the rules that store them, in Python's and ECMA 262's regexes
NAMES = {
    validation.DOMAIN: (
        [
            "mycompany.com",
            "Sub.MyCompany.example.",
            "xn--bcher-kva.example",
            "a-b.c0.example",
            ".".join(["a" * 63] * 3 + ["b" * 61]),
        ],
        ["localhost", "1.2.3.4", "-bad.example", "a..b.example", "a b.example"],
    ),
    validation.EMAIL: (
        ["hello@mycompany.com", "First.Last+tag@Sub.Example.org", "x" * 64 + "@a.io"],
        ["not-an-email", "a..b@x.example", ".a@x.example", "x" * 65 + "@a.io"],
    ),
    validation.ALIAS_SOURCE: (
        ["info@mycompany.com", "@mycompany.com"],
        ["@", "a@@b.example", "info@localhost"],
    ),
}
PASSWORDS = (
    ["secure-pass-123", "  spaced out  ", "contraseña-ñandú", "x" * 256],
    ["          ", "tab\there-and-more", "nul\x00here-and-more", "x" * 257],
)
URLS = (
    ["https://hooks.example.com/emboux", "HTTP://127.0.0.1:8080/hook?x=1#y"],
    ["ftp://hooks.example.com/", "http:///hook", "http://a b/", "https://"],
)
DATETIMES = (
    ["2026-12-31T23:59:59Z", "2026-12-31t23:59:59.5+02:00", "1000-01-01T00:00:00Z"],
    ["yesterday", "0191-08-30T14:42:22Z", "2026-02-30T00:00:00", ""],
)


class TestOpenapi(EmbouxApiCase):
    def setUp(self):
        super().setUp()
        response = self.api("GET", "/openapi.json")
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.headers["Content-Type"], "application/json")
        self.document = response.json()
        self.paths = self.document["paths"]

    def _validator(self, schema):
        """A JSON Schema 2020-12 validator (OpenAPI 3.1's) of ``schema``,
        whose references point into the document."""
        root = {**schema, "components": self.document["components"]}
        return jsonschema_rs.Draft202012Validator(root, validate_formats=True)

    def assertValid(self, schema, value, where):
        errors = [error.message for error in self._validator(schema).iter_errors(value)]
        self.assertFalse(errors, f"{where}: {value!r}")

    def _body_schema(self, method, path):
        operation = self._operation(method, path)
        return operation["requestBody"]["content"]["application/json"]["schema"]

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

    # -- exactly true --------------------------------------------------------------
    def _published(self, route, location, name):
        """The schema ``route`` publishes for its ``location`` field ``name``,
        and whether it is required."""
        if location == "body":
            schema = self._body_schema(route.method, route.path)
            return schema["properties"][name], name in schema["required"]
        operation = self._operation(route.method, route.path)
        for parameter in operation["parameters"]:
            if parameter["in"] == "query" and parameter["name"] == name:
                return parameter["schema"], parameter["required"]
        return self.fail(f"{route.path}: no query parameter {name}")

    def _accepted(self, spec, value, location, name):
        if location == "query" and not isinstance(value, str):
            value = str(value)
        try:
            validate({name: spec}, {name: value}, location)
        except RequestInvalid:
            return False
        return True

    def test_every_rule_is_published(self):
        """Each value at a published bound is accepted and each one past it
        refused: the validation and the document hold the same rules (those
        the models check, ``Field.rules``, are weighed against them below)."""
        for route in ROUTES:
            for location, fields in (("body", route.body), ("query", route.query)):
                for name, spec in fields.items():
                    with self.subTest(route=route.operation_id, field=name):
                        self._check_field(route, location, name, spec)

    def _check_field(self, route, location, name, spec):
        schema, required = self._published(route, location, name)
        self.assertEqual(required, spec.required)
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        self.assertEqual("null" in types, spec.nullable)
        self.assertEqual(self._accepted(spec, None, location, name), spec.nullable)

        def bounds(schema, low, high, value):
            """At ``schema``'s ``low`` and ``high`` keywords, but those of
            the models' rules: accepted; one step past them: refused."""
            for key, step in ((low, -1), (high, 1)):
                if key in schema and key not in spec.rules:
                    bound = schema[key]
                    self.assertTrue(self._accepted(spec, value(bound), location, name))
                    refused = value(bound + step)
                    self.assertFalse(self._accepted(spec, refused, location, name))

        if spec.kind == "int":
            bounds(schema, "minimum", "maximum", lambda n: n)
        item = schema["items"] if spec.kind == "list" else schema
        if spec.kind in ("str", "list") and not (spec.syntax or spec.pattern):
            wrap = (lambda text: [text]) if spec.kind == "list" else (lambda text: text)
            bounds(item, "minLength", "maxLength", lambda n: wrap("x" * n))
        if spec.choices:
            enum = [choice for choice in item["enum"] if choice is not None]
            self.assertEqual(enum, list(spec.choices))
            for choice in enum:
                self.assertTrue(self._accepted(spec, choice, location, name))
            self.assertFalse(self._accepted(spec, "not-a-choice", location, name))
        pattern = spec.pattern or (spec.syntax and spec.syntax.pattern)
        if pattern:
            self.assertEqual(item["pattern"], anchored(pattern))
        if spec.syntax:
            self.assertEqual(item["maxLength"], spec.syntax.max_length)
        if spec.kind == "datetime":
            self.assertEqual(schema["format"], "date-time")
            self.assertEqual(schema["pattern"], anchored(validation.DATETIME_PATTERN))

    def _samples(self, schema, pattern, samples, accept):
        """``samples`` (admitted, refused) by ``schema`` in ECMA 262 and by
        ``pattern`` in Python; ``accept`` is what the rules say of one."""
        admitted, refused = samples
        validator = self._validator(schema)
        for value in admitted:
            with self.subTest(value=value):
                self.assertValid(schema, value, "admitted")
                if pattern:
                    self.assertTrue(re.fullmatch(pattern, value))
                self.assertTrue(accept(value))
        for value in refused:
            with self.subTest(value=value):
                self.assertFalse(validator.is_valid(value))

    def test_patterns_agree_with_the_rules(self):
        """Whatever a published pattern admits, the rules accept as typed:
        names, passwords, webhook URLs and datetimes."""

        def normalizes(normalize):
            def accept(value):
                try:
                    normalize(value)
                except names.InvalidName:
                    return False
                return True

            return accept

        users = self._body_schema("POST", "/users/")["properties"]
        published = {
            validation.DOMAIN: self._body_schema("POST", "/domains/")["properties"][
                "name"
            ],
            validation.EMAIL: users["email"],
            validation.ALIAS_SOURCE: self._body_schema("POST", "/aliases/")[
                "properties"
            ]["source"],
        }
        for syntax, samples in NAMES.items():
            accept = normalizes(syntax.normalize)
            self._samples(published[syntax], syntax.pattern, samples, accept)
            # what the pattern refuses here, the rules refuse too
            for value in samples[1]:
                self.assertFalse(accept(value), value)

        minimum = users["password"]["minLength"]
        self.assertEqual(
            minimum, self.env["emboux.mail.mailbox"]._emboux_password_min_length()
        )

        def policy(value):
            try:
                passwords.check(value, minimum)
            except passwords.PasswordRejected:
                return False
            return True

        self._samples(users["password"], validation.PASSWORD_PATTERN, PASSWORDS, policy)
        webhook = next(r for r in ROUTES if r.operation_id == "post_webhooks")
        url = self._body_schema("POST", "/webhooks/")["properties"]["url"]
        self._samples(
            url,
            validation.URL_PATTERN,
            URLS,
            lambda value: self._accepted(webhook.body["url"], value, "body", "url"),
        )
        for value in URLS[1]:
            self.assertFalse(self._accepted(webhook.body["url"], value, "body", "url"))
        expires = self._body_schema("POST", "/api-keys/")["properties"]["expires_at"]
        self._samples(expires, None, DATETIMES, parse_datetime)
        for value in DATETIMES[1]:
            self.assertIsNone(parse_datetime(value), value)

    def test_examples_match_the_document(self):
        """The documented examples (EmBoux's pages) are valid requests and
        answers of their routes."""
        examples = 0
        for path, item in self.paths.items():
            for method, operation in item.items():
                where = f"{method.upper()} {path}"
                body = operation.get("requestBody", {}).get("content", {})
                for content in body.values():
                    if "example" in content:
                        examples += 1
                        self.assertValid(content["schema"], content["example"], where)
                for answer in operation["responses"].values():
                    for content in answer.get("content", {}).values():
                        if "example" in content:
                            examples += 1
                            self.assertValid(
                                content["schema"], content["example"], where
                            )
                for parameter in operation["parameters"]:
                    schema = parameter["schema"]
                    if "example" in schema:
                        self.assertValid(schema, schema["example"], where)
        self.assertGreaterEqual(examples, 30)

    def _call(self, caller, method, path, json=None, **values):
        """Send ``method`` on ``path`` (a documented path, its parameters
        in ``values``); check the answer against the document."""
        query = values.pop("query", "")
        response = self.api(method, path.format(**values) + query, caller, json=json)
        operation = self._operation(method, path)
        status = str(response.status_code)
        where = f"{method} {path} answered {status}: {response.text[:300]}"
        self.assertIn(status, operation["responses"], where)
        answer = operation["responses"][status]
        self.answered.add((method, path, status))
        for header, spec in answer.get("headers", {}).items():
            if spec.get("required"):
                self.assertValid(spec["schema"], int(response.headers[header]), where)
        if "content" not in answer:
            self.assertEqual(response.content, b"", where)
            return response
        self.assertEqual(response.headers["Content-Type"], "application/json", where)
        self.assertValid(
            answer["content"]["application/json"]["schema"], response.json(), where
        )
        return response

    def test_answers_match_the_document(self):
        """Every route answers what the document says, with null where it
        may be (a key that never expires, an orphan domain...), and its
        errors in their documented shapes."""
        self.answered = set()
        self.env["ir.config_parameter"].set_param(
            "emboux_mail.webhook_allow_private", "1"
        )
        master, tenant = self.MASTER, self.TOKEN_A
        domain = {"domain_name": "doc.example"}
        mailbox = {"email": "box@doc.example"}
        self._call(tenant, "POST", "/domains/", {"name": "doc.example"})
        self._call(tenant, "POST", "/domains/", {"name": "doc.example"})  # 400
        self._call(tenant, "POST", "/domains/", {"name": "no"})  # 422
        self._call(tenant, "GET", "/domains/", query="?limit=5&offset=0")
        self._call(master, "GET", "/domains/")
        users = {**domain, "password": "Doc-pass-12345", **mailbox}
        self._call(tenant, "POST", "/users/", users)
        self._call(tenant, "GET", "/users/")
        self._call(
            tenant, "PUT", "/users/{email}", {"password": "Doc-pass-67890"}, **mailbox
        )
        self._call(tenant, "GET", "/users/{email}/quota", **mailbox)
        self._call(tenant, "PUT", "/users/{email}/quota", {"quota_mb": 100}, **mailbox)
        alias = {
            **domain,
            "source": "info@doc.example",
            "destination": "box@doc.example",
        }
        self._call(tenant, "POST", "/aliases/", alias)
        self._call(tenant, "GET", "/aliases/", query="?domain_id=0")
        with self.fake_dns({}):
            self._call(tenant, "POST", "/domains/{domain_name}/verify", **domain)
            self._call(tenant, "GET", "/domains/{domain_name}/dns-check", **domain)
        self._call(
            tenant, "POST", "/domains/{domain_name}/register-subdomain", **domain
        )
        sub = {"domain_name": "sub.doc.example"}
        self._call(
            master,
            "PUT",
            "/domains/{domain_name}/parent",
            {"is_wildcard": True},
            **domain,
        )
        self.env["emboux.mail.domain"].search([("name", "=", "doc.example")]).write(
            {"verified": True, "provider": "mailgun"}
        )
        self._call(tenant, "POST", "/domains/", {"name": "sub.doc.example"})
        self._call(tenant, "POST", "/domains/{domain_name}/register-subdomain", **sub)
        self._call(
            master,
            "PUT",
            "/domains/{domain_name}/parent",
            {"parent_domain": None},
            **sub,
        )
        self._call(
            master, "PUT", "/domains/{domain_name}/owner", {"partner_ref": None}, **sub
        )
        self._call(
            tenant, "PUT", "/domains/{domain_name}/owner", {"partner_ref": None}, **sub
        )
        self._call(tenant, "PUT", "/domains/{domain_name}/suspend", **domain)
        self._call(tenant, "PUT", "/domains/{domain_name}/activate", **domain)
        self._call(tenant, "GET", "/domains/{domain_name}/outbound", **domain)
        self._call(
            tenant,
            "PUT",
            "/domains/{domain_name}/outbound",
            {"outbound_daily_limit": 10},
            **domain,
        )
        self._call(
            master, "POST", "/domains/{domain_name}/outbound/increment", {}, **domain
        )
        self._call(tenant, "GET", "/domains/{domain_name}/transfer", **domain)
        self._call(
            master,
            "PUT",
            "/domains/{domain_name}/transfer",
            {"transfer_monthly_mb": 5},
            **domain,
        )
        self._call(tenant, "GET", "/domains/{domain_name}/retention", **domain)
        self._call(
            tenant,
            "PUT",
            "/domains/{domain_name}/retention",
            {"retention_days": 30},
            **domain,
        )
        token = {"token": "emb_doc_key_4Hq8Lm2Zp7Wx"}
        self.secrets.add(token["token"])
        self._call(master, "POST", "/api-keys/", {**token, "partner_ref": "doc_ref"})
        self._call(
            master,
            "PUT",
            "/api-keys/{token}",
            {"expires_at": "2999-01-01T00:00:00Z"},
            **token,
        )
        self._call(
            master,
            "GET",
            "/api-keys/{token}/usage",
            query="?since=2025-01-15T10:30:00",
            **token,
        )
        self._call(master, "GET", "/api-keys/{token}/usage", **token)
        hook = {"url": "http://127.0.0.1:9/hook", "events": ["mailbox.created"]}
        created = self._call(master, "POST", "/webhooks/", hook).json()
        webhook = {"webhook_id": created["id"]}
        self._call(master, "GET", "/webhooks/")
        self._call(master, "GET", "/webhooks/{webhook_id}", **webhook)
        self._call(
            master, "PUT", "/webhooks/{webhook_id}", {"rotate_secret": True}, **webhook
        )
        self._call(master, "PUT", "/webhooks/{webhook_id}", {"events": []}, **webhook)
        self._call(master, "DELETE", "/webhooks/{webhook_id}", **webhook)
        self._call(master, "DELETE", "/webhooks/{webhook_id}", **webhook)  # 404
        self._call(master, "DELETE", "/api-keys/{token}", **token)
        self._call(tenant, "DELETE", "/aliases/{source}", source="info@doc.example")
        self._call(tenant, "DELETE", "/users/{email}", **mailbox)
        self._call(tenant, "DELETE", "/domains/{domain_name}", **domain)
        self._call(tenant, "DELETE", "/domains/{domain_name}", **domain)  # 404
        self._call("not-a-key", "GET", "/domains/")  # 403
        succeeded = {(m, p) for m, p, status in self.answered if status < "300"}
        self.assertEqual(succeeded, {(r.method, r.path) for r in ROUTES})
        self.assertLessEqual(
            {"400", "403", "404", "422"}, {status for *_r, status in self.answered}
        )
