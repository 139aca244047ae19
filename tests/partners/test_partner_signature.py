"""The partners' signature scheme as a partner implements it from the docs: a fixed vector
(worked out with `openssl dgst -sha256 -hmac`), the replay window to the second, and each
refusal's code. test_forwards.py covers the same checks through the HTTP endpoint."""

import time

import pytest

from channels.partners.signature import SIGNATURE, TIMESTAMP, WINDOW_SECONDS, check, sign

SECRET = "s3cret-12345"
BODY = b'{"order":"A1"}'
STAMP = 1764547200
# printf '1764547200.{"order":"A1"}' | openssl dgst -sha256 -hmac s3cret-12345
VECTOR = "2f4d16af9168b4dc7cb1f6189e4c7d9d5ee49873b7ac72b218073ac708eb703e"


def test_the_signature_is_hex_hmac_sha256_of_timestamp_dot_body():
    assert sign(SECRET, STAMP, BODY) == VECTOR
    assert sign(SECRET, str(STAMP), BODY) == VECTOR


def test_signed_headers_carry_the_whole_seconds_and_their_signature():
    from channels.partners.signature import signed_headers

    headers = signed_headers(SECRET, BODY, now=STAMP + 0.9)
    assert headers == {TIMESTAMP: str(STAMP), SIGNATURE: VECTOR}
    before = int(time.time())
    headers = signed_headers(SECRET, BODY)
    assert before <= int(headers[TIMESTAMP]) <= int(time.time())
    assert check(SECRET, headers[TIMESTAMP], headers[SIGNATURE], BODY, time.time()) is None


def test_a_genuine_fresh_request_passes_in_any_hex_case_and_with_spaces():
    assert check(SECRET, str(STAMP), VECTOR, BODY, STAMP) is None
    assert check(SECRET, str(STAMP), f" {VECTOR.upper()}\n", BODY, STAMP) is None


@pytest.mark.parametrize("offset", [WINDOW_SECONDS, -WINDOW_SECONDS])
def test_five_minutes_either_way_is_still_fresh(offset):
    assert WINDOW_SECONDS == 300
    assert check(SECRET, str(STAMP), VECTOR, BODY, STAMP + offset) is None


@pytest.mark.parametrize("offset", [WINDOW_SECONDS + 1, -WINDOW_SECONDS - 1, 86_400])
def test_older_or_newer_than_five_minutes_is_refused_as_a_replay(offset):
    assert check(SECRET, str(STAMP), VECTOR, BODY, STAMP + offset) == "signature_expired"


@pytest.mark.parametrize(
    ("timestamp", "signature"), [(None, VECTOR), ("", VECTOR), (str(STAMP), None), (str(STAMP), "")]
)
def test_a_missing_header_is_named_missing(timestamp, signature):
    assert check(SECRET, timestamp, signature, BODY, STAMP) == "signature_missing"


@pytest.mark.parametrize("timestamp", ["-1764547200", "1764547200.5", "17645x7200", "1" * 13])
def test_a_timestamp_that_is_not_unix_seconds_is_invalid(timestamp):
    assert check(SECRET, timestamp, VECTOR, BODY, STAMP) == "signature_invalid"


def test_a_twelve_digit_timestamp_is_read_and_judged_by_the_clock():
    twelve = "1" * 12
    assert check(SECRET, twelve, sign(SECRET, twelve, BODY), BODY, STAMP) == "signature_expired"
    assert check(SECRET, twelve, sign(SECRET, twelve, BODY), BODY, int(twelve)) is None


@pytest.mark.parametrize(
    ("secret", "body", "signature"),
    [
        ("another-secret", BODY, VECTOR),  # signed by someone else
        (SECRET, b'{"order":"A2"}', VECTOR),  # body changed after signing
        (SECRET, BODY, VECTOR[:-1] + "0"),  # signature changed
        (SECRET, BODY, VECTOR[:32]),  # truncated
    ],
)
def test_a_forged_or_altered_request_is_invalid(secret, body, signature):
    assert check(secret, str(STAMP), signature, body, STAMP) == "signature_invalid"


def test_the_timestamp_is_part_of_what_is_signed():
    assert check(SECRET, str(STAMP + 1), VECTOR, BODY, STAMP) == "signature_invalid"
