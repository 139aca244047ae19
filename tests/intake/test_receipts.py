"""The receipt check, exhaustively and deterministically: every single substitution and every
swap of two neighbours, for every pair of symbols at every position, is caught; codes issued
under the old Luhn check still read; the lenient read-back maps what people type."""

import itertools

import pytest

from workflows.cases import receipts
from workflows.cases.receipts import ALPHABET, combine

N = len(ALPHABET)
BODIES = ["000000000", "ZZZZZZZZZ", "0123456789ABCDEFGH"[:9], "7Q4XW0ZMK"]


def coded(body: str) -> str:
    return body + receipts._check_symbol(body)


def test_the_operation_is_a_totally_anti_symmetric_quasigroup():
    for x in range(N):
        assert sorted(combine(x, y) for y in range(N)) == list(range(N))  # rows permute
        assert sorted(combine(y, x) for y in range(N)) == list(range(N))  # columns permute
    for c, x, y in itertools.product(range(N), repeat=3):
        if x != y:
            assert combine(combine(c, x), y) != combine(combine(c, y), x)


@pytest.mark.parametrize("body", BODIES)
def test_every_single_substitution_is_caught(body):
    code = coded(body)
    assert receipts.normalize(code) == code
    for i, ch in itertools.product(range(len(code)), ALPHABET):
        if ch != code[i]:
            typo = code[:i] + ch + code[i + 1 :]
            assert not receipts.is_current(typo), (code, i, ch)


def test_every_neighbour_swap_of_every_symbol_pair_is_caught_at_every_position():
    base = "0" * 9
    for i in range(len(base)):  # i, i+1 over the whole code, the check symbol included
        for a, b in itertools.permutations(ALPHABET, 2):
            body = base[:i] + a + base[i + 1 :]
            if i + 1 < len(base):
                body = body[: i + 1] + b + body[i + 2 :]
                code = coded(body)
            else:  # the last body symbol next to the check symbol
                code = coded(body)
                if code[-1] == a:
                    continue
            swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
            if swapped != code:
                assert not receipts.is_current(swapped), (code, swapped)


def test_the_zero_next_to_z_that_luhn_missed_is_now_caught():
    body = "AB0ZCDEFG"
    legacy = body + receipts._legacy_check_symbol(body)
    legacy_swapped = legacy.replace("0Z", "Z0")
    # The old check let this swap through: it read as another valid code ("not found").
    assert receipts._legacy_check_symbol(legacy_swapped[:-1]) == legacy_swapped[-1]
    assert not receipts.is_current(coded(body).replace("0Z", "Z0"))


def test_codes_issued_under_the_legacy_check_still_read():
    body = "7Q4XW0ZMK"
    legacy = body + receipts._legacy_check_symbol(body)
    assert receipts.normalize(legacy) == legacy
    assert receipts.normalize(legacy.lower()) == legacy


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("o1i2l-3abcd", "011213ABCD"),
        (" 01 121 3ABCD ", "011213ABCD"),
        ("0112-13-abcd", "011213ABCD"),
    ],
)
def test_lenient_read_back(typed, canonical):
    assert receipts._cleaned(typed) == canonical


def test_what_cannot_be_a_code_is_refused():
    code = coded("7Q4XW0ZMK")
    for typed in ("", code[:-1], code + "0", code[:4] + "U" + code[5:], code[:4] + "*" + code[5:]):
        assert receipts.normalize(typed) is None


async def test_a_swapped_code_is_answered_as_mistyped_not_unknown(client):
    created = await client.post(
        "/api/v1/reports", json={"description": "孩子在楼道里哭了一晚上，家里没人", "reporter": {}}
    )
    code = created.json()["receipt_code"].replace("-", "")
    i = next(i for i in range(len(code) - 1) if code[i] != code[i + 1])
    swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
    response = await client.get(f"/api/v1/receipts/{swapped}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "receipt_invalid"
    body = "7Q4XW0ZMK"
    legacy_unknown = body + receipts._legacy_check_symbol(body)  # not on file
    assert not receipts.is_current(legacy_unknown)
    response = await client.get(f"/api/v1/receipts/{legacy_unknown}")
    assert response.json()["error"]["code"] == "receipt_invalid"
