"""Receipt codes: short enough to read over the phone, unguessable, self-checking.

Nine random symbols from Crockford's base-32 alphabet (45 bits from `secrets`, unrelated to
any id) plus one Luhn mod 32 check symbol, which catches every single mistyped symbol and
every swap of two neighbours. Shown as `XXXXX-XXXXX`; read back leniently (case, spaces,
dashes, O for 0, I/L for 1).
"""

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_RANDOM_LEN = 9


def _check_symbol(body: str) -> str:
    """Luhn mod N over the body (N = 32)."""
    n = len(ALPHABET)
    total, factor = 0, 2
    for ch in reversed(body):
        addend = factor * _INDEX[ch]
        total += addend // n + addend % n
        factor = 1 if factor == 2 else 2
    return ALPHABET[(n - total % n) % n]


def new_code() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(_RANDOM_LEN))
    return body + _check_symbol(body)


def display(code: str) -> str:
    return f"{code[:5]}-{code[5:]}"


def normalize(text: str) -> str | None:
    """The canonical code for what a person typed, or None if it cannot be a valid code."""
    cleaned = "".join(text.split()).replace("-", "").upper().translate(_LOOKALIKES)
    if len(cleaned) != _RANDOM_LEN + 1 or any(c not in _INDEX for c in cleaned):
        return None
    if _check_symbol(cleaned[:-1]) != cleaned[-1]:
        return None
    return cleaned
