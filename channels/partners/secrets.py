"""Partners' shared secrets at rest: encrypted with a key derived from the service's secret
key (we must sign with them, so a hash would not do). Rotating HOTLINE_SECRET_KEY means
adding the partners again."""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken


def _box(secret_key: str) -> Fernet:
    digest = hashlib.sha256(b"hotline-partner-secrets:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal(secret_key: str, secret: str) -> str:
    return _box(secret_key).encrypt(secret.encode()).decode()


def open_box(secret_key: str, box: str) -> str | None:
    """The secret, or None when it was sealed under another key."""
    try:
        return _box(secret_key).decrypt(box.encode()).decode()
    except InvalidToken:
        return None
