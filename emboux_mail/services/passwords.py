"""The one password policy of mailboxes (no Odoo import).

Length is what makes a password strong, so the policy asks for a minimum
length and nothing about character classes (NIST SP 800-63B). It refuses
what the mail server and the hashing cannot take whole: text that is not
valid UTF-8 (a lone surrogate), control characters, and more than
``MAX_BYTES`` bytes (``sha512_crypt`` would cut or refuse a longer one).
"""

import unicodedata

MIN_LENGTH = 10
MAX_BYTES = 1024


class PasswordRejected(ValueError):
    """``code`` names the rule broken, for a translated message."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


def check(password, min_length=MIN_LENGTH, name=None):
    """Raise PasswordRejected when ``password`` breaks the policy; ``name``
    (a mailbox's local part) must not be part of it."""
    if not isinstance(password, str) or not password.strip():
        raise PasswordRejected("empty")
    try:
        size = len(password.encode("utf-8"))
    except UnicodeEncodeError as error:
        raise PasswordRejected("not_utf8") from error
    if size > MAX_BYTES:
        raise PasswordRejected("too_long")
    if any(unicodedata.category(char) == "Cc" for char in password):
        raise PasswordRejected("control")
    if len(password) < min_length:
        raise PasswordRejected("too_short")
    if name and len(name) >= 3 and name.lower() in password.lower():
        raise PasswordRejected("contains_name")
