"""The service as it runs, no test pump: a partner's work order goes in over HTTP, the real
scheduler relays it and the real worker routes it into a liaison's queue; the liaison claims
it, and the partner's callback server receives the signed 受理 feedback of the case
registered on intake. Once with `hotline up` (API, workers and scheduler in one tree, on the test's
servers), once with `hotline api`, `hotline worker` and `hotline scheduler` as separate
processes, as the containers run them. Every wait polls for an outcome, with a deadline."""

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from channels.partners.signature import signed_headers
from db.engine import make_engine, make_sessionmaker, transaction
from db.models import AppUser
from dispatch.ops import schema
from dispatch.ops.demo import NEIGHBOURHOOD, plan_accounts
from dispatch.staff.auth import hash_password
from tests.fixtures.partners import FakePartner
from tests.fixtures.processes import _free_port

pytest_plugins = ("tests.fixtures.processes",)

PASSWORD = "end-to-end-password"
DEADLINE = 90.0  # seconds; a loaded two-core machine runs the whole suite beside us


def _until(what: str, check: Callable[[], object], procs: list[subprocess.Popen]) -> object:
    started = time.monotonic()
    while True:
        for proc in procs:
            assert proc.poll() is None, f"{proc.args} exited before {what}"
        if result := check():
            return result
        assert time.monotonic() - started < DEADLINE, f"not within {DEADLINE:.0f} s: {what}"
        time.sleep(0.2)  # polling for an outcome, not timing anything


def _hotline(*args: str, env: dict[str, str], stdin: str = "") -> str:
    done = subprocess.run([sys.executable, "-m", "dispatch.ops.cli", *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def _add_staff(url: str) -> dict[str, str]:
    """A caseworker at the city level and the police liaison at the office that serves the
    demo neighbourhood (the one routing sends its police referrals to)."""
    engine = make_engine(url, pool_size=1)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            accounts = await plan_accounts(session)
            police = next(a for a in accounts if a.department == "police")
            center = next(a for a in accounts if a.role == "caseworker")
            password_hash = hash_password(PASSWORD)
            users = {
                "caseworker": AppUser(username="e2e_caseworker", role="caseworker",
                                      jurisdiction_code=center.jurisdiction,
                                      password_hash=password_hash),
                "liaison": AppUser(username="e2e_police", role="liaison",
                                   department_code="police",
                                   jurisdiction_code=police.jurisdiction,
                                   password_hash=password_hash),
            }
            session.add_all(users.values())
        return {kind: user.username for kind, user in users.items()}
    finally:
        await engine.dispose()


@pytest.fixture
def env(fresh_database, own_redis_url, tmp_path) -> dict[str, str]:
    url = fresh_database()
    schema.migrate(url)
    return {**os.environ, "DATABASE_URL": url, "REDIS_URL": own_redis_url,
            "HOTLINE_DATA_DIR": str(tmp_path), "HOTLINE_SECRET_KEY": secrets.token_hex(16),
            "HOTLINE_PORT": str(_free_port()), "HOTLINE_API_WORKERS": "1",
            "HOTLINE_WORKERS": "1"}


@pytest.fixture
def partner() -> Iterator[FakePartner]:
    fake = FakePartner(secret=f"12345-{secrets.token_hex(12)}")
    fake.start()
    yield fake
    fake.stop()


def _start(kinds: list[str], env: dict[str, str]) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-m", "dispatch.ops.cli", kind], env=env,
                             start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL) for kind in kinds]


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("kinds", [["up"], ["api", "worker", "scheduler"]],
                         ids=["hotline-up", "separate-processes"])
def test_a_work_order_reaches_the_liaison_and_the_partner_hears_it_was_accepted(
    kinds, env, partner
):
    _hotline("partner", "add", "--source", "12345", "--callback-url", partner.url,
             env=env, stdin=partner.secret + "\n")
    staff = asyncio.run(_add_staff(env["DATABASE_URL"]))
    procs = _start(kinds, env)
    base = f"http://127.0.0.1:{env['HOTLINE_PORT']}"
    try:
        def ready() -> bool:
            try:
                answer = httpx.get(f"{base}/readyz", timeout=2)
            except httpx.TransportError:
                return False
            return answer.status_code == 200 and answer.json()["missing"] == []

        _until("the API ready with a worker and a scheduler", ready, procs)

        external_id = f"E2E-{secrets.token_hex(4)}"
        body = json.dumps({
            "external_id": external_id,
            "content": "群众来电反映邻居家孩子经常被父亲打，昨晚哭喊声很大。",
            "received_at": datetime.now(UTC).isoformat(),
            "address": "东湖市湖东区幸福街道幸福里小区3栋",
            "jurisdiction": NEIGHBOURHOOD,
        }, ensure_ascii=False).encode()
        headers = {"content-type": "application/json", **signed_headers(partner.secret, body)}
        accepted = httpx.post(f"{base}/api/v1/forwards/12345", content=body, headers=headers,
                              timeout=30)
        assert accepted.status_code == 202, accepted.text
        case_id = accepted.json()["case_id"]

        def token(username: str) -> dict[str, str]:
            answer = httpx.post(f"{base}/api/v1/auth/token", timeout=30,
                                data={"username": username, "password": PASSWORD})
            assert answer.status_code == 200, answer.text
            return {"Authorization": f"Bearer {answer.json()['access_token']}"}

        liaison = token(staff["liaison"])

        def in_queue() -> dict | None:
            answer = httpx.get(f"{base}/api/v1/referrals", headers=liaison, timeout=30,
                               params={"status": "queued"})
            assert answer.status_code == 200, answer.text
            mine = [r for r in answer.json()["items"] if r["case_id"] == case_id]
            return mine[0] if mine else None

        referral = _until("the police referral in the liaison's queue", in_queue, procs)
        assert referral["department"] == "police"
        claimed = httpx.post(f"{base}/api/v1/referrals/{referral['id']}/claim",
                             headers=liaison, timeout=30)
        assert claimed.status_code == 200, claimed.text
        case = httpx.get(f"{base}/api/v1/cases/{case_id}", timeout=30,
                         headers=token(staff["caseworker"]))
        assert case.json()["state"] == "reported"  # a partner's order is registered on intake

        def accepted_feedback() -> list:
            return [r for r in partner.received if r.message.get("status") == "accepted"]

        heard = _until("the partner's 受理 feedback", accepted_feedback, procs)
        assert heard[0].signature_ok
        assert heard[0].message["external_id"] == external_id
        assert len(accepted_feedback()) == 1  # once, however the jobs ran
    finally:
        _stop(procs)
