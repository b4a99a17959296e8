"""Encryption of what the connected mode must keep readable: a tenant key's
clear token, which the upstream EmBoux API uses as the key's address.

The key comes from the server (its environment or configuration file),
never from the database, so that a copy of the database carries only
ciphertexts. Fernet authenticates what it decrypts: a ciphertext of another
key is told apart from a token, never decrypted into garbage.
"""

import base64
import functools
import hashlib
import re

from cryptography.fernet import Fernet, InvalidToken

# what Fernet.generate_key() returns: used as it is
FERNET_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{43}=$")
# any other secret is stretched by scrypt; the salt is fixed on purpose: the
# same secret must give the same key on every server of a deployment
SALT = b"emboux_mail tenant tokens"


class UnreadableSecret(ValueError):
    """A ciphertext that this key did not encrypt, or that was altered."""


@functools.lru_cache(maxsize=8)
def _fernet(secret):
    if FERNET_KEY_RE.match(secret):
        return Fernet(secret)
    key = hashlib.scrypt(secret.encode(), salt=SALT, n=2**14, r=8, p=1, dklen=32)
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(secret, text):
    """``text`` encrypted with the key of ``secret``, as ASCII text."""
    return _fernet(secret).encrypt(text.encode()).decode()


def decrypt(secret, ciphertext):
    """The text of ``ciphertext``; ``UnreadableSecret`` when ``secret`` is
    not the one it was encrypted with."""
    try:
        return _fernet(secret).decrypt(ciphertext.encode()).decode()
    except InvalidToken as error:
        raise UnreadableSecret("not encrypted with this key") from error
