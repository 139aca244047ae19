"""Receipt codes: short enough to read over the phone, unguessable, self-checking.

Nine random symbols from Crockford's base-32 alphabet (45 bits from `secrets`, unrelated to
any id) plus one check symbol. Shown as `XXXXX-XXXXX`; read back leniently (case, spaces,
dashes, O for 0, I/L for 1).

The check is Damm's algorithm over the quasigroup x∘y = 2·x + y of the field GF(32): every
row and column is a permutation (so every single mistyped symbol is caught) and it is
totally anti-symmetric, (c∘x)∘y = (c∘y)∘x only when x = y (so every swap of two neighbours
is caught, the check symbol's own included). The Luhn mod 32 check used before missed a 0
next to a Z; codes issued with it stay valid (`legacy`), and a code that passes only the
old check but is not on file is answered as mistyped, not as unknown.
"""

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_RANDOM_LEN = 9
_FIELD_POLY = 0b100101  # x^5 + x^2 + 1, irreducible over GF(2): GF(32)


def _times_two(x: int) -> int:
    """2·x in GF(32): a shift, reduced by the field polynomial."""
    x <<= 1
    return x ^ _FIELD_POLY if x & 0b100000 else x


def combine(x: int, y: int) -> int:
    """The quasigroup operation x∘y = 2·x + y (addition in GF(32) is XOR)."""
    return _times_two(x) ^ y


def _fold(symbols: str) -> int:
    interim = 0
    for ch in symbols:
        interim = combine(interim, _INDEX[ch])
    return interim


def _check_symbol(body: str) -> str:
    """The one symbol c with fold(body)∘c = 0 (c = 2·fold(body), since y ↦ y is XOR)."""
    return ALPHABET[_times_two(_fold(body))]


def _legacy_check_symbol(body: str) -> str:
    """Luhn mod N over the body (N = 32): the check of codes issued before the Damm check."""
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


def _cleaned(text: str) -> str | None:
    cleaned = "".join(text.split()).replace("-", "").upper().translate(_LOOKALIKES)
    if len(cleaned) != _RANDOM_LEN + 1 or any(c not in _INDEX for c in cleaned):
        return None
    return cleaned


def is_current(code: str) -> bool:
    """Whether a canonical code passes today's check (every code issued now does)."""
    return _fold(code) == 0


def normalize(text: str) -> str | None:
    """The canonical code for what a person typed, or None if it cannot be a valid code
    (neither today's check nor the legacy one passes)."""
    cleaned = _cleaned(text)
    if cleaned is None:
        return None
    if is_current(cleaned) or _legacy_check_symbol(cleaned[:-1]) == cleaned[-1]:
        return cleaned
    return None
