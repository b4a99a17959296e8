"""Describe the API's routes once, for the OpenAPI document and for the
controllers that validate requests against the same description."""

from dataclasses import dataclass, field

from .validation import MISSING, Field

FIELD_TYPES = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "bool": {"type": "boolean"},
    "datetime": {"type": "string", "format": "date-time"},
    # a list of strings: its ``choices`` are the items' enum
    "list": {"type": "array", "items": {"type": "string"}},
}


@dataclass(frozen=True)
class Route:
    """One operation: ``path`` uses ``{param}`` placeholders."""

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

    @property
    def params(self):
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]

    @property
    def operation_id(self):
        words = [p.strip("{}").replace("-", "_") for p in self.path.split("/") if p]
        return "_".join([self.method.lower(), *words])


def _field_schema(spec: Field):
    schema = dict(FIELD_TYPES[spec.kind])
    for key, value in (
        ("minimum", spec.minimum),
        ("minLength", spec.min_length),
        ("maxLength", spec.max_length),
        ("pattern", spec.pattern),
    ):
        if value is not None:
            schema[key] = value
    if spec.choices and spec.kind == "list":
        schema["items"] = {**schema["items"], "enum": list(spec.choices)}
    elif spec.choices:
        schema["enum"] = list(spec.choices)
    if spec.default is not MISSING:
        schema["default"] = spec.default
    if spec.nullable:
        schema["type"] = [schema["type"], "null"]
    if spec.description:
        schema["description"] = spec.description
    return schema


def _object_schema(fields):
    return {
        "type": "object",
        "properties": {name: _field_schema(spec) for name, spec in fields.items()},
        "required": [name for name, spec in fields.items() if spec.required],
    }


def _response_schema(name):
    if name.startswith("["):
        return {
            "type": "array",
            "items": {"$ref": f"#/components/schemas/{name[1:-1]}"},
        }
    return {"$ref": f"#/components/schemas/{name}"}


def _operation(route):
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in route.params
    ]
    parameters += [
        {
            "name": name,
            "in": "query",
            "required": spec.required,
            "schema": _field_schema(spec),
        }
        for name, spec in route.query.items()
    ]
    success = {"description": "Success"}
    if route.response:
        success["content"] = {
            "application/json": {"schema": _response_schema(route.response)}
        }
        if route.response.startswith("["):
            success["headers"] = {
                "X-Total-Count": {
                    "description": "Number of items before limit and offset",
                    "schema": {"type": "integer"},
                }
            }
    responses = {str(route.status): success}
    errors = [(403, "Invalid API key"), *route.errors, (422, "Validation Error")]
    for status, detail in errors:
        entry = responses.setdefault(
            str(status),
            {
                "description": detail,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/HTTPValidationError"}
                        if status == 422
                        else {"$ref": "#/components/schemas/Error"}
                    }
                },
            },
        )
        if detail not in entry["description"]:
            entry["description"] += f"; {detail}"
    operation = {
        "summary": route.summary,
        "operationId": route.operation_id,
        "parameters": parameters,
        "responses": responses,
        "security": [{"bearer": []}],
    }
    if route.body:
        operation["requestBody"] = {
            "required": route.body_required,
            "content": {"application/json": {"schema": _object_schema(route.body)}},
        }
    if route.master:
        operation["x-required-role"] = "master"
    return operation


def build(routes, schemas, title, version):
    """The OpenAPI 3.1 document of ``routes``; ``schemas`` are the response
    objects, as ``{name: {field: kind}}``."""
    paths = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    components = {
        name: {
            "type": "object",
            "properties": {
                key: dict(FIELD_TYPES.get(kind, {"type": kind}))
                for key, kind in props.items()
            },
        }
        for name, props in schemas.items()
    }
    components["Error"] = {
        "type": "object",
        "properties": {"detail": {"type": "string"}},
    }
    components["HTTPValidationError"] = {
        "type": "object",
        "properties": {
            "detail": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "loc": {"type": "array", "items": {"type": "string"}},
                        "msg": {"type": "string"},
                        "type": {"type": "string"},
                    },
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
