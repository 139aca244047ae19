"""Proof of work on public intake: a way past the per-address limit that costs hashing, not
a third party and not a puzzle to read.

Behind one address (a school, a hospital, a carrier's NAT) many honest reporters share the
per-address limit; a script flooding the police desk shares it too. The form page carries a
challenge signed with the service's key; the page's script (`static/proof.js`) finds, while
the reporter types, a number whose SHA-256 with the challenge starts with `bits` zero bits
(about 2**bits hashes: a few seconds in a browser). A report carrying a fresh, unused,
correct proof counts against a larger per-address allowance of its own
(`channels.webform_limits`), so a script pays seconds of CPU per report while a person pays
nothing they notice. Without JavaScript, or without Web Crypto (plain HTTP off localhost),
the form still works under the ordinary limits, and a refusal still gives the hotline number.
"""

import hashlib
import hmac
import secrets

VERSION = "w1"


def _mac(secret: bytes, body: str) -> str:
    return hmac.new(secret, f"proof:{body}".encode(), hashlib.sha256).hexdigest()[:32]


def issue(secret: bytes, now: float, bits: int) -> str:
    """A challenge: version, issue time, a single-use nonce, the difficulty, and a MAC over
    them, so the server keeps nothing until a proof comes back."""
    body = f"{VERSION}.{int(now)}.{secrets.token_hex(8)}.{bits}"
    return f"{body}.{_mac(secret, body)}"


def zero_bits(digest: bytes) -> int:
    """How many leading bits of `digest` are zero."""
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def _digest(challenge: str, solution: str) -> bytes:
    return hashlib.sha256(f"{challenge}:{solution}".encode()).digest()


def solve(challenge: str) -> str:
    """The smallest solution: what the page's script computes (and a partner's client may)."""
    bits = int(challenge.split(".")[3])
    n = 0
    while zero_bits(_digest(challenge, str(n))) < bits:
        n += 1
    return str(n)


def verified_nonce(
    secret: bytes, proof: str | None, now: float, max_age: int, min_bits: int
) -> str | None:
    """The nonce of a proof (`challenge:solution`) that we issued, not older than
    `max_age` seconds, at least `min_bits` hard and correct; None for anything else.
    Single use is the caller's (the nonce, remembered for `max_age`)."""
    if not proof or len(proof) > 200 or ":" not in proof:
        return None
    challenge, solution = proof.rsplit(":", 1)
    parts = challenge.split(".")
    if len(parts) != 5 or parts[0] != VERSION or not solution.isdigit() or len(solution) > 12:
        return None
    _, issued, nonce, bits, mac = parts
    if not (issued.isdigit() and bits.isdigit()):
        return None
    if not hmac.compare_digest(mac, _mac(secret, ".".join(parts[:4]))):
        return None
    if int(bits) < min_bits or not 0 <= now - int(issued) <= max_age:
        return None
    if zero_bits(_digest(challenge, solution)) < int(bits):
        return None
    return nonce
