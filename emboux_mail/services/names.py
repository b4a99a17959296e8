"""Normalise and validate domain names and mail addresses.

Names are stored the way the mail server and the EmBoux API compare them:
trimmed, lower-case, without a trailing dot, and IDNA-encoded (punycode), so
``Bücher.Example.`` and ``xn--bcher-kva.example`` are the same domain.
"""

import functools
import re

from publicsuffixlist import PublicSuffixList

LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
LOCAL_RE = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$"
)
MAX_DOMAIN = 253
MAX_LOCAL = 64


class InvalidName(ValueError):
    """``code`` says what is wrong, for a translated message at the caller."""

    def __init__(self, code, value):
        super().__init__(f"{code}: {value!r}")
        self.code = code
        self.value = value


def normalize_domain(name):
    """Return the stored form of a domain name or raise InvalidName."""
    if not isinstance(name, str):
        raise InvalidName("not_text", name)
    value = name.strip().lower().rstrip(".")
    if not value:
        raise InvalidName("empty", name)
    try:
        value = value.encode("idna").decode("ascii")
    except UnicodeError as error:
        raise InvalidName("idna", name) from error
    labels = value.split(".")
    if len(labels) < 2:
        raise InvalidName("one_label", name)
    if len(value) > MAX_DOMAIN:
        raise InvalidName("too_long", name)
    if not all(LABEL_RE.match(label) for label in labels):
        raise InvalidName("bad_label", name)
    if labels[-1].isdigit():
        raise InvalidName("numeric_tld", name)
    return value


def normalize_email(address):
    """Return ``local@domain`` in stored form or raise InvalidName."""
    if not isinstance(address, str):
        raise InvalidName("not_text", address)
    value = address.strip().lower()
    local, sep, domain = value.rpartition("@")
    if not sep or not local:
        raise InvalidName("no_at", address)
    if len(local) > MAX_LOCAL or not LOCAL_RE.match(local):
        raise InvalidName("bad_local", address)
    return f"{local}@{normalize_domain(domain)}"


def normalize_alias_source(source):
    """An alias source is an address, or ``@domain`` for a catch-all."""
    if isinstance(source, str) and source.strip().startswith("@"):
        return "@" + normalize_domain(source.strip()[1:])
    return normalize_email(source)


def domain_of(address):
    """The domain part of a normalised address or catch-all source."""
    return address.rpartition("@")[2]


def parent_candidates(name):
    """Every proper parent of ``name`` that is still a domain, longest first:
    ``a.b.example.com`` gives ``b.example.com`` then ``example.com``."""
    labels = name.split(".")
    return [".".join(labels[index:]) for index in range(1, len(labels) - 1)]


@functools.cache
def _public_suffixes():
    # the offline copy the package ships (pinned): no download at run time
    return PublicSuffixList()


def is_public_suffix(name):
    """True for a name under which anyone may register (``com``,
    ``co.uk``, ``github.io``): such a name is never one party's domain."""
    return _public_suffixes().is_public(name)


def self_and_parents(name):
    """``name`` and every proper parent that is still a domain."""
    return [name, *parent_candidates(name)]
