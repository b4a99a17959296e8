"""Describe the API's routes once, for the OpenAPI document and for the
controllers that validate requests against the same description.

The document is meant to be exactly true: every constraint the validation
enforces is published from the same ``Field`` (and the same patterns), every
value that may be null is marked so, and every status a route can answer is
listed with the shape of its body."""

from dataclasses import dataclass, field

from .validation import DATETIME_PATTERN, MISSING, STAMP_PATTERN, Field


def anchored(pattern):
    """``pattern`` as JSON Schema reads it (a search): the whole value."""
    return f"^(?:{pattern})$"


FIELD_TYPES = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "bool": {"type": "boolean"},
    "datetime": {
        "type": "string",
        "format": "date-time",
        "pattern": anchored(DATETIME_PATTERN),
    },
}
# what answers hold, beside ``Field``s: a trailing "?" marks a nullable one
ANSWER_TYPES = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "bool": {"type": "boolean"},
    "number": {"type": "number"},
    "stamp": {"type": "string", "pattern": anchored(STAMP_PATTERN)},
    "strings": {"type": "array", "items": {"type": "string"}},
    "objects": {"type": "array", "items": {"type": "object"}},
    "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
}
ERROR = "#/components/schemas/Error"
INVALID = "#/components/schemas/HTTPValidationError"
# what any route may answer, whatever it does
COMMON_ERRORS = (
    (403, "Invalid authorization header format"),
    (403, "Invalid API key"),
    (403, "API key is deactivated"),
    (403, "API key has expired"),
    (413, "Request body too large"),
    (429, "Too many failed authentication attempts"),
    (503, "The API needs one database per URL: set db_name or dbfilter"),
)


@dataclass(frozen=True)
class Route:
    """One operation: ``path`` uses ``{param}`` placeholders; ``example``
    is a request body and ``answer`` the success body, as documented."""

    method: str
    path: str
    summary: str
    master: bool = False
    body: dict = field(default_factory=dict)
    body_required: bool = True  # False: an empty body stands for ``{}``
    query: dict = field(default_factory=dict)
    status: int = 200
    response: str | None = None  # a component schema name, "[Name]" for a list
    errors: tuple = ()  # (status, detail) pairs documented for the route
    example: dict | None = None
    answer: object = None

    @property
    def params(self):
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]

    @property
    def operation_id(self):
        words = [p.strip("{}").replace("-", "_") for p in self.path.split("/") if p]
        return "_".join([self.method.lower(), *words])

    @property
    def invalid_input(self):
        """Whether the route reads input that may be refused as invalid."""
        return bool(self.body or self.query) or any(s == 422 for s, _d in self.errors)

    @property
    def all_errors(self):
        """Every (status, detail) the route may answer besides success."""
        errors = [*COMMON_ERRORS, *self.errors]
        if self.master:
            errors.append((403, "Master token required"))
        if self.invalid_input:
            errors.append((422, "Validation Error"))
        return errors


def _string_schema(spec):
    schema = dict(FIELD_TYPES["str"])
    low, high = spec.length_range
    for key, value in (("minLength", low), ("maxLength", high)):
        if value is not None:
            schema[key] = value
    pattern = spec.pattern or (spec.syntax and spec.syntax.pattern)
    if pattern:
        schema["pattern"] = anchored(pattern)
    if spec.syntax and spec.syntax.bounds:
        schema["allOf"] = [{"pattern": bound} for bound in spec.syntax.bounds]
    if spec.choices:
        schema["enum"] = list(spec.choices)
    return schema


def field_schema(spec: Field):
    """The JSON Schema of a ``Field``: what ``validation`` enforces, and
    what the rules behind it check (``spec.rules``)."""
    if spec.kind == "str":
        schema = _string_schema(spec)
    elif spec.kind == "list":
        # a list of strings: its ``choices`` are the items' enum
        schema = {"type": "array", "items": _string_schema(spec)}
    else:
        schema = dict(FIELD_TYPES[spec.kind])
    if spec.kind == "int":
        schema["minimum"], schema["maximum"] = spec.int_range
    rules = dict(spec.rules)
    if "pattern" in rules:
        rules["pattern"] = anchored(rules["pattern"])
    schema.update(rules)
    if spec.default is not MISSING:
        schema["default"] = spec.default
    if spec.nullable:
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    description = spec.description or (spec.syntax and spec.syntax.description)
    if description:
        schema["description"] = description
    return schema


def _property_schema(kind):
    if isinstance(kind, Field):
        return field_schema(kind)
    if isinstance(kind, dict):
        return kind
    schema = dict(ANSWER_TYPES[kind.rstrip("?")])
    if kind.endswith("?"):
        schema["type"] = [schema["type"], "null"]
    return schema


def object_schema(properties, required=None):
    """An object of ``properties`` (``Field``s, ``ANSWER_TYPES`` names or
    schemas); all of them are ``required`` unless told otherwise."""
    return {
        "type": "object",
        "properties": {
            name: _property_schema(kind) for name, kind in properties.items()
        },
        "required": list(properties if required is None else required),
    }


def _request_schema(fields):
    return object_schema(fields, [n for n, spec in fields.items() if spec.required])


def _response_schema(name):
    if name.startswith("["):
        return {
            "type": "array",
            "items": {"$ref": f"#/components/schemas/{name[1:-1]}"},
        }
    return {"$ref": f"#/components/schemas/{name}"}


def _parameter(name, location, schema, required):
    return {"name": name, "in": location, "required": required, "schema": schema}


def _success(route):
    success = {"description": "Success"}
    if route.response:
        content = {"schema": _response_schema(route.response)}
        if route.answer is not None:
            content["example"] = route.answer
        success["content"] = {"application/json": content}
        if route.response.startswith("["):
            success["headers"] = {
                "X-Total-Count": {
                    "description": "Number of items before limit and offset",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 0},
                }
            }
    return success


def _responses(route):
    responses = {str(route.status): _success(route)}
    for status, detail in route.all_errors:
        entry = responses.get(str(status))
        if entry:
            if detail not in entry["description"]:
                entry["description"] += f"; {detail}"
            continue
        schema = INVALID if status == 422 else ERROR
        entry = {
            "description": detail,
            "content": {"application/json": {"schema": {"$ref": schema}}},
        }
        if status == 429:
            entry["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1},
                }
            }
        responses[str(status)] = entry
    return dict(sorted(responses.items()))


def _operation(route, path_params):
    parameters = [
        _parameter(name, "path", path_params.get(name, {"type": "string"}), True)
        for name in route.params
    ]
    parameters += [
        _parameter(name, "query", field_schema(spec), spec.required)
        for name, spec in route.query.items()
    ]
    operation = {
        "summary": route.summary,
        "operationId": route.operation_id,
        "parameters": parameters,
        "responses": _responses(route),
        "security": [{"bearer": []}],
    }
    if route.body:
        content = {"schema": _request_schema(route.body)}
        if route.example is not None:
            content["example"] = route.example
        operation["requestBody"] = {
            "required": route.body_required,
            "content": {"application/json": content},
        }
    if route.master:
        operation["x-required-role"] = "master"
    return operation


def build(routes, schemas, title, version, path_params=None, optional=None):
    """The OpenAPI 3.1 document of ``routes``; ``schemas`` are the answers'
    objects, as ``{name: {field: kind}}`` (see ``object_schema``), of which
    ``optional`` names the fields not always answered; ``path_params`` are
    the schemas of path parameters by name."""
    paths = {}
    for route in routes:
        operation = _operation(route, path_params or {})
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    optional = optional or {}
    components = {
        name: object_schema(
            props, [key for key in props if key not in optional.get(name, ())]
        )
        for name, props in schemas.items()
    }
    components["Error"] = object_schema({"detail": "str"})
    components["HTTPValidationError"] = object_schema(
        {
            "detail": {
                "type": "array",
                "items": object_schema(
                    {
                        "loc": {
                            "type": "array",
                            "items": {"type": ["string", "integer"]},
                        },
                        "msg": "str",
                        "type": "str",
                        "input": {},
                    },
                    ["loc", "msg", "type"],
                ),
            }
        }
    )
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
