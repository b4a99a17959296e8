"""Validate JSON bodies and query strings, answering errors in the shape
FastAPI gives them (``{"detail": [{"loc", "msg", "type"}]}``), which is what
existing EmBoux clients parse.

A schema is a mapping ``field -> Field``. Unknown body fields are ignored,
as FastAPI does. The OpenAPI document is built from the same ``Field``s, so
every rule enforced here is a rule published there.
"""

import dataclasses
import datetime
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from odoo.addons.emboux_mail.services import names, passwords

MISSING = object()
# integers are stored in PostgreSQL ``integer`` columns
INT_MIN, INT_MAX = -(2**31), 2**31 - 1

# -- the syntax of names, as JSON Schema patterns (ECMA 262, no lookaround,
# which generators of examples cannot follow). The rules accept any case and
# international names (stored in punycode): a pattern spells the ASCII form,
# whose every match the rules accept as it is typed.
_LDH = "A-Za-z0-9"
_LABEL = f"[{_LDH}](?:[{_LDH}-]{{0,61}}[{_LDH}])?"
# the rules refuse an all-digit top-level label; real ones start with a letter
_TOP_LABEL = f"[A-Za-z](?:[{_LDH}-]{{0,61}}[{_LDH}])?"
DOMAIN_PATTERN = rf"(?:{_LABEL}\.)+{_TOP_LABEL}\.?"
_ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
LOCAL_PATTERN = rf"{_ATOM}(?:\.{_ATOM})*"
EMAIL_PATTERN = f"{LOCAL_PATTERN}@{DOMAIN_PATTERN}"
ALIAS_SOURCE_PATTERN = f"(?:{LOCAL_PATTERN})?@{DOMAIN_PATTERN}"
# the lengths a pattern cannot count: the local part, the domain part
LOCAL_BOUND = f"^[^@]{{0,{names.MAX_LOCAL}}}@"
DOMAIN_BOUND = f"@[^@]{{1,{names.MAX_DOMAIN}}}$"
# a password: no control character (Unicode category Cc), not only spaces,
# and at most ``passwords.MAX_BYTES`` bytes even in 4-byte characters
_PRINTABLE = r"[^\x00-\x1f\x7f-\x9f]"
PASSWORD_PATTERN = rf"{_PRINTABLE}*[^\s\x00-\x1f\x7f-\x9f]{_PRINTABLE}*"
PASSWORD_MAX_LENGTH = passwords.MAX_BYTES // 4
# an http(s) URL whose host ``webhooks.check_url`` then weighs
URL_PATTERN = r"[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9._~-]+(?::[0-9]{1,5})?(?:[/?#]\S*)?"
# a timestamp as the API answers it (``stamps.stamp``)
STAMP_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
# a datetime given to the API: ISO 8601 from the year 1000, whose answers
# spell the year in four digits
DATETIME_PATTERN = r"[1-9][0-9]{3}-.+"


@dataclass(frozen=True)
class Syntax:
    """A kind of name that the rules normalise (``names``): checked here
    with ``normalize``, published as ``pattern`` (with ``bounds``, more
    patterns every value also matches)."""

    normalize: Callable
    pattern: str
    max_length: int
    bounds: tuple = ()
    description: str = ""


DOMAIN = Syntax(
    names.normalize_domain,
    DOMAIN_PATTERN,
    names.MAX_DOMAIN,
    description="A domain name; international names are also accepted, "
    "and stored in punycode.",
)
EMAIL = Syntax(
    names.normalize_email,
    EMAIL_PATTERN,
    names.MAX_LOCAL + 1 + names.MAX_DOMAIN,
    (LOCAL_BOUND, DOMAIN_BOUND),
    "A mail address; its domain may also be an international name.",
)
ALIAS_SOURCE = Syntax(
    names.normalize_alias_source,
    ALIAS_SOURCE_PATTERN,
    names.MAX_LOCAL + 1 + names.MAX_DOMAIN,
    (LOCAL_BOUND, DOMAIN_BOUND),
    "A mail address, or @domain for a catch-all.",
)


@dataclass(frozen=True)
class Field:
    """One value of a body, a query or an answer."""

    kind: str  # "str", "int", "bool", "datetime", "list" (of "str")
    required: bool = False
    nullable: bool = False
    minimum: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None  # the whole value matches it
    mismatch: str = ""  # the message of a value that does not (else the pattern)
    syntax: Syntax | None = None  # checked by the caller (translated message)
    choices: tuple = ()  # the only values a "str" may take (an enum)
    # JSON Schema keywords of what the rules check, with their own messages
    rules: dict = dataclasses.field(default_factory=dict)
    description: str = ""
    default: object = MISSING

    @property
    def int_range(self):
        """The bounds an "int" is held to: its minimum within PostgreSQL's."""
        low = INT_MIN if self.minimum is None else max(self.minimum, INT_MIN)
        return low, INT_MAX

    @property
    def length_range(self):
        """The lengths a "str" is held to, its syntax's maximum included."""
        high = self.max_length
        if self.syntax and (high is None or self.syntax.max_length < high):
            high = self.syntax.max_length
        return self.min_length, high


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
    low, high = spec.length_range
    if low is not None and len(value) < low:
        plural = "s" if low > 1 else ""
        message = f"String should have at least {low} character{plural}"
        return None, error(location, name, message, "string_too_short", value)
    if high is not None and len(value) > high:
        message = f"String should have at most {high} characters"
        return None, error(location, name, message, "string_too_long", value)
    if spec.pattern and not re.fullmatch(spec.pattern, value):
        message = spec.mismatch or f"String should match pattern '{spec.pattern}'"
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


def _convert_int(value, spec, location, name):
    """An integer within ``spec``'s range; as JSON Schema has it, a number
    without a fraction (``5.0``) is one."""
    if location == "query" and isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            value = None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
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
    low, high = spec.int_range
    if value < low:
        message = f"Input should be greater than or equal to {low}"
        return None, error(location, name, message, "greater_than_equal", value)
    if value > high:
        message = f"Input should be less than or equal to {high}"
        return None, error(location, name, message, "less_than_equal", value)
    return value, None


def parse_datetime(text):
    """The naive UTC datetime of an ISO 8601 ``text`` of
    ``DATETIME_PATTERN`` (RFC 3339 included, in either case), or None. The
    last day of the calendar in a zone west of UTC is past what Python
    represents: the latest datetime there is."""
    if not re.fullmatch(DATETIME_PATTERN, text):
        return None
    try:
        parsed = datetime.datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return None
    if not parsed.tzinfo:
        return parsed
    try:
        return parsed.replace(tzinfo=None) - parsed.utcoffset()
    except OverflowError:
        return datetime.datetime.max


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
        return _convert_int(value, spec, location, name)
    if kind == "datetime":
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is not None:
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
