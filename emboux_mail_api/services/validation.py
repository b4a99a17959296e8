"""Validate JSON bodies and query strings, answering errors in the shape
FastAPI gives them (``{"detail": [{"loc", "msg", "type"}]}``), which is what
existing EmBoux clients parse.

A schema is a mapping ``field -> Field``. Unknown body fields are ignored,
as FastAPI does.
"""

import dataclasses
import datetime
import json
import re
from dataclasses import dataclass

MISSING = object()
# integers are stored in PostgreSQL ``integer`` columns
INT_MIN, INT_MAX = -(2**31), 2**31 - 1


@dataclass(frozen=True)
class Field:
    kind: str  # "str", "int", "bool", "datetime", "list" (of "str")
    required: bool = False
    nullable: bool = False
    minimum: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    choices: tuple = ()  # the only values a "str" may take (an enum)
    description: str = ""
    default: object = MISSING


class RequestInvalid(Exception):
    """422: ``errors`` is FastAPI's list of ``{loc, msg, type}``."""

    def __init__(self, errors):
        super().__init__(errors)
        self.errors = errors


def error(location, field, message, kind, value=MISSING):
    entry = {"loc": [location, field] if field else [location], "msg": message}
    entry["type"] = kind
    if value is not MISSING:
        entry["input"] = value
    return entry


def _check_string(value, spec, location, name):
    if "\x00" in value:
        # PostgreSQL cannot store it; not echoed, it may be a password
        message = "Value error, a string cannot contain NUL characters"
        return None, error(location, name, message, "value_error")
    if spec.min_length is not None and len(value) < spec.min_length:
        plural = "s" if spec.min_length > 1 else ""
        message = f"String should have at least {spec.min_length} character{plural}"
        return None, error(location, name, message, "string_too_short", value)
    if spec.max_length is not None and len(value) > spec.max_length:
        message = f"String should have at most {spec.max_length} characters"
        return None, error(location, name, message, "string_too_long", value)
    if spec.pattern and not re.fullmatch(spec.pattern, value):
        message = f"String should match pattern '{spec.pattern}'"
        return None, error(location, name, message, "string_pattern_mismatch", value)
    if spec.choices and value not in spec.choices:
        quoted = [f"'{choice}'" for choice in spec.choices]
        expected = " or ".join(filter(None, [", ".join(quoted[:-1]), quoted[-1]]))
        message = f"Input should be {expected}"
        return None, error(location, name, message, "enum", value)
    return value, None


def _convert_list(_kind, value, spec, location, name):
    """A list of strings, each checked as a "str" of ``spec``'s
    constraints; an item's error is located by its index."""
    if not isinstance(value, list):
        message = "Input should be a valid list"
        return None, error(location, name, message, "list_type", value)
    item = dataclasses.replace(spec, kind="str")
    for index, entry in enumerate(value):
        _entry, problem = _convert("str", entry, item, location, name)
        if problem:
            problem["loc"].append(index)
            return None, problem
    return list(value), None


def _convert(kind, value, spec, location, name):
    """Return (value, None) or (None, error entry)."""
    if kind == "str":
        if not isinstance(value, str):
            return None, error(
                location, name, "Input should be a valid string", "string_type", value
            )
        return _check_string(value, spec, location, name)
    if kind == "bool":
        if isinstance(value, bool):
            return value, None
        return None, error(
            location, name, "Input should be a valid boolean", "bool_type", value
        )
    if kind == "int":
        if location == "query" and isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                value = None
        if isinstance(value, bool) or not isinstance(value, int):
            return None, error(
                location,
                name,
                "Input should be a valid integer, unable to parse string as an integer"
                if location == "query"
                else "Input should be a valid integer",
                "int_parsing" if location == "query" else "int_type",
                value,
            )
        minimum = INT_MIN if spec.minimum is None else max(spec.minimum, INT_MIN)
        if value < minimum:
            return None, error(
                location,
                name,
                f"Input should be greater than or equal to {minimum}",
                "greater_than_equal",
                value,
            )
        if value > INT_MAX:
            message = f"Input should be less than or equal to {INT_MAX}"
            return None, error(location, name, message, "less_than_equal", value)
        return value, None
    if kind == "datetime":
        if isinstance(value, str):
            try:
                parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                parsed = None
            if parsed is not None:
                if parsed.tzinfo:
                    parsed = parsed.astimezone(datetime.timezone.utc).replace(
                        tzinfo=None
                    )
                return parsed, None
        return None, error(
            location,
            name,
            "Input should be a valid datetime",
            "datetime_parsing",
            value,
        )
    raise ValueError(kind)


def validate(schema, data, location):
    """Return the validated values (only fields of ``schema`` that were
    given, or have a default); raise RequestInvalid listing every error."""
    if location == "body" and not isinstance(data, dict):
        raise RequestInvalid(
            [
                error(
                    "body",
                    None,
                    "Input should be a valid dictionary",
                    "dict_type",
                    data,
                )
            ]
        )
    values, errors = {}, []
    for name, spec in schema.items():
        if name not in data:
            if spec.required:
                errors.append(error(location, name, "Field required", "missing"))
            elif spec.default is not MISSING:
                values[name] = spec.default
            continue
        value = data[name]
        if value is None and spec.nullable:
            values[name] = None
            continue
        convert = _convert_list if spec.kind == "list" else _convert
        converted, problem = convert(spec.kind, value, spec, location, name)
        if problem:
            errors.append(problem)
        else:
            values[name] = converted
    if errors:
        raise RequestInvalid(errors)
    return values


def parse_json(raw):
    """Decode a request body; a missing body is ``{}``'s absence (None)."""
    if not raw.strip():
        raise RequestInvalid([error("body", None, "Field required", "missing")])
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise RequestInvalid(
            [error("body", None, f"JSON decode error: {exc}", "json_invalid")]
        ) from exc
