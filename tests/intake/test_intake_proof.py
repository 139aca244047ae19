"""Proof of work on public intake: behind one address (a school, a hospital's NAT) honest
reporters whose browser did the form's hashing get past the address's ordinary limit; a
proof is ours, fresh, hard enough and single-use; without one the form works as before."""

import re
import secrets
import time

import pytest

from channels import proof
from tests.fixtures.apps import csrf_token
from tests.fixtures.intake import address, body, configured, reporter, text

# Cheap proofs for the suite (the shipped difficulty is 18 bits, seconds of browser time).
EASY = {"hotline_intake_proof_bits": 8, "hotline_intake_limits_per_address": "1/hour",
        "hotline_intake_limits_per_address_proven": "3/hour"}
KEY = b"k" * 32


def test_a_proof_is_checked_for_origin_age_difficulty_and_answer():
    now = time.time()
    challenge = proof.issue(KEY, now, 8)
    answer = proof.solve(challenge)
    good = f"{challenge}:{answer}"
    assert proof.verified_nonce(KEY, good, now + 60, 3600, 8) == challenge.split(".")[2]
    assert proof.verified_nonce(b"x" * 32, good, now, 3600, 8) is None  # not ours
    assert proof.verified_nonce(KEY, good, now + 3601, 3600, 8) is None  # too old
    assert proof.verified_nonce(KEY, good, now - 5, 3600, 8) is None  # from the future
    assert proof.verified_nonce(KEY, good, now, 3600, 9) is None  # easier than asked now
    wrong = next(n for n in range(1000) if proof.zero_bits(
        proof._digest(challenge, str(n))) < 8)
    assert proof.verified_nonce(KEY, f"{challenge}:{wrong}", now, 3600, 8) is None
    easier = challenge.replace(".8.", ".1.")  # a lower difficulty breaks the signature
    assert proof.verified_nonce(KEY, f"{easier}:{proof.solve(easier)}", now, 3600, 1) is None
    for junk in (None, "", "x", "a:b", f"{challenge}:-1", f"{challenge}:{'9' * 13}", "::::"):
        assert proof.verified_nonce(KEY, junk, now, 3600, 8) is None


@pytest.mark.parametrize("digest, bits", [(b"\x00\x00\x01", 23), (b"\x80", 0), (b"\x0f", 4),
                                          (b"\x00" * 4, 32)])
def test_zero_bits_are_counted_from_the_first_byte(digest, bits):
    assert proof.zero_bits(digest) == bits


async def _challenge(client) -> str:
    answer = await client.get("/api/v1/reports/challenge")
    assert answer.status_code == 200, answer.text
    assert answer.json()["bits"] == 8 and answer.json()["expires_in"] == 4 * 3600
    return answer.json()["challenge"]


async def test_the_api_with_a_proof_gets_past_the_address_limit_once_per_proof(app):
    with configured(app, **EASY):
        async with reporter(app, address()) as school:
            first = await school.post("/api/v1/reports", json=body(text()))
            assert first.status_code == 201
            plain = await school.post("/api/v1/reports", json=body(text()))
            assert plain.status_code == 429  # the address's ordinary allowance is used up
            challenge = await _challenge(school)
            good = f"{challenge}:{proof.solve(challenge)}"
            proven = await school.post("/api/v1/reports", json=body(text()),
                                       headers={"X-Hotline-Proof": good})
            assert proven.status_code == 201, proven.text
            replayed = await school.post("/api/v1/reports", json=body(text()),
                                         headers={"X-Hotline-Proof": good})
            assert replayed.status_code == 429  # a proof is good for one report
            forged = await school.post("/api/v1/reports", json=body(text()),
                                       headers={"X-Hotline-Proof": f"{challenge}:1"})
            assert forged.status_code == 429


async def test_proven_reports_have_a_limit_too(app):
    with configured(app, **EASY):
        async with reporter(app, address()) as script:
            answers = []
            for _ in range(4):
                challenge = await _challenge(script)
                answers.append(await script.post(
                    "/api/v1/reports", json=body(text()),
                    headers={"X-Hotline-Proof": f"{challenge}:{proof.solve(challenge)}"}))
    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    assert "110" in answers[-1].json()["error"]["message"]


async def test_the_form_carries_a_challenge_and_its_script_and_a_solved_form_gets_through(app):
    with configured(app, **EASY):
        async with reporter(app, address()) as browser:
            page = await browser.get("/report")
            assert '<script src="/static/public/proof.js" defer></script>' in page.text
            script = await browser.get("/static/public/proof.js")
            assert script.status_code == 200 and "crypto.subtle" in script.text
            form = _form(page.text, "孩子被关在阳台上一整夜")
            assert (await browser.post("/report", data=form)).status_code == 201
            # Without the script's answer the address's ordinary limit holds (no JS: as before)
            page = await browser.get("/report")
            unsolved = await browser.post("/report", data=_form(page.text, "又听到孩子哭喊"))
            assert unsolved.status_code == 429 and "110" in unsolved.text
            page = await browser.get("/report")
            challenge = re.search(r'name="pow_challenge" value="([^"]+)"', page.text).group(1)
            solved = await browser.post("/report", data={
                **_form(page.text, "邻居家孩子又被打了"), "pow_solution": proof.solve(challenge)})
            assert solved.status_code == 201, solved.text


async def test_no_challenge_when_the_deployment_switches_it_off(app):
    with configured(app, hotline_intake_proof_bits=0):
        async with reporter(app, address()) as browser:
            assert "pow_challenge" not in (await browser.get("/report")).text
            off = await browser.get("/api/v1/reports/challenge")
    assert off.status_code == 404 and off.json()["error"]["code"] == "proof_not_offered"


def _form(page: str, words: str) -> dict:
    challenge = re.search(r'name="pow_challenge" value="([^"]+)"', page).group(1)
    return {
        "csrf_token": csrf_token(page), "pow_challenge": challenge,
        "reporter_name": "张老师", "reporter_role": "teacher",
        "jurisdiction": "990103001001", "in_danger_now": "yes",
        "description": f"{words}，{secrets.token_hex(4)}号楼",
    }
