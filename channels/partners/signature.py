"""The partners' signature scheme, both ways: lowercase hex HMAC-SHA256 of
`timestamp + "." + raw body` under the partner's shared secret, sent as
X-Hotline-Timestamp (Unix seconds) and X-Hotline-Signature. The same function signs our
callbacks, checks their forwards and drives `hotline simulate`, so the three cannot drift.
"""

import hashlib
import hmac
import time

TIMESTAMP = "X-Hotline-Timestamp"
SIGNATURE = "X-Hotline-Signature"
# A request stamped further than this from our clock (either way) is refused as a replay.
WINDOW_SECONDS = 300


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    timestamp = int(time.time() if now is None else now)
    return {TIMESTAMP: str(timestamp), SIGNATURE: sign(secret, timestamp, body)}


def check(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float
) -> str | None:
    """None when the request is genuine and fresh; else why not (an error code)."""
    if not timestamp or not signature:
        return "signature_missing"
    if not timestamp.isdigit() or len(timestamp) > 12:
        return "signature_invalid"
    if abs(now - int(timestamp)) > WINDOW_SECONDS:
        return "signature_expired"
    if not hmac.compare_digest(sign(secret, timestamp, body), signature.strip().lower()):
        return "signature_invalid"
    return None
