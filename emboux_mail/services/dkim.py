"""DKIM keys of the hosted domains (RFC 6376), with no Odoo import.

The private part is kept as PEM, the form OpenDKIM's key table reads; the
public part is what the ``<selector>._domainkey`` TXT record publishes.
"""

import base64
import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KEY_BITS = 2048
# one DNS TXT string holds at most 255 octets: longer values are split
TXT_CHUNK = 255
_P_TAG_RE = re.compile(r"(?:^|;)\s*p=([^;]*)")


def generate():
    """A new key pair: ``(private PEM, public key in base64 DER)``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    return private_pem, base64.b64encode(public_der).decode()


def record_value(public_key):
    """The text of the TXT record that publishes ``public_key``."""
    return f"v=DKIM1; k=rsa; p={public_key}"


def txt_strings(value):
    """``value`` split in strings a zone file or a DNS panel accepts."""
    return [value[i : i + TXT_CHUNK] for i in range(0, len(value), TXT_CHUNK)]


def public_key_of(value):
    """The ``p=`` tag of a DKIM TXT record, whitespace removed; None when
    the record has none."""
    match = _P_TAG_RE.search(value)
    return re.sub(r"\s+", "", match.group(1)) if match else None
