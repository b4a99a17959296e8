"""Hashing of API tokens and mailbox passwords (passlib).

API tokens follow Odoo core's ``res.users.apikeys``: only a pbkdf2 hash and a
short lookup index are stored. The index is derived from a SHA-256 of the
token rather than its first characters, because tokens may be supplied by the
caller (``POST /api-keys/``) and often share a prefix such as ``emb_``.

Mailbox passwords are hashed in a scheme Dovecot reads as is
(``{SHA512-CRYPT}$6$...``), so the mail server can check logins from the
database without the clear password ever being stored.
"""

import collections
import hashlib
import secrets
import threading

from passlib.context import CryptContext
from passlib.hash import sha512_crypt

TOKEN_PREFIX = "emb_"
INDEX_SIZE = 8
# Tokens are long random strings: a dictionary attack is not the threat, so a
# low round count keeps each API request cheap (as Odoo core does).
TOKEN_CONTEXT = CryptContext(["pbkdf2_sha512"], pbkdf2_sha512__rounds=6000)
DOVECOT_SCHEME = "{SHA512-CRYPT}"
# configured once: passlib builds (and tests) a new handler at each ``using``
MAILBOX_HASHER = sha512_crypt.using(rounds=5000)
PASSWORD_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def generate_token():
    """A new random API token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(30)


def token_index(token):
    """The short, non-secret lookup key stored beside a token's hash."""
    return hashlib.sha256(token.encode()).hexdigest()[:INDEX_SIZE]


def hash_token(token):
    return TOKEN_CONTEXT.hash(token)


class _Verified:
    """Tokens already checked against a stored hash, by SHA-256 digest.

    Every API request presents its token: pbkdf2 at each one would cost it
    more than the rest of its work. A hit needs both the same token and the
    same stored hash, so a key whose token changes is checked again; only
    successes are kept, failures always pay the full price."""

    def __init__(self, size):
        self.size = size
        self.entries = collections.OrderedDict()
        self.lock = threading.Lock()

    def check(self, token, token_hash):
        key = (token_hash, hashlib.sha256(token.encode()).digest())
        with self.lock:
            if key in self.entries:
                self.entries.move_to_end(key)
                return True
        if not TOKEN_CONTEXT.verify(token, token_hash):
            return False
        with self.lock:
            self.entries[key] = None
            if len(self.entries) > self.size:
                self.entries.popitem(last=False)
        return True


VERIFIED = _Verified(4096)


def verify_token(token, token_hash):
    """Check ``token`` against a stored hash."""
    return bool(token_hash) and VERIFIED.check(token, token_hash)


def hash_mailbox_password(password):
    """A Dovecot-compatible ``{SHA512-CRYPT}`` hash."""
    return DOVECOT_SCHEME + MAILBOX_HASHER.hash(password)


def verify_mailbox_password(password, stored):
    if not stored or not stored.startswith(DOVECOT_SCHEME):
        return False
    return sha512_crypt.verify(password, stored[len(DOVECOT_SCHEME) :])


def generate_password(length=16):
    """A random password without look-alike characters."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def generate_verification_token():
    """The token of a domain's ownership TXT record (URL-safe, no secret:
    it is published)."""
    return secrets.token_urlsafe(24)
