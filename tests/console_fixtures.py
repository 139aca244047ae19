"""Fixtures for the consoles' tests (load with `pytest_plugins`): signed-in HTTP clients,
cases made through the public API, and the app served over real HTTP for the browser."""

import re
import secrets
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from db.models import AppUser, Referral
from tests.conftest import PASSWORD
from tests.test_case_lifecycle import report

PAGE_TOKEN = re.compile(r'name="(?:csrf_token|login_token)" value="([^"]+)"')


def form_token(html: str) -> str:
    """The CSRF (or sign-in) token of the first form on a page."""
    match = PAGE_TOKEN.search(html)
    assert match, "no form token on the page"
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, username: str, password: str = PASSWORD):
    page = await client.get("/console/login")
    return await client.post(
        "/console/login",
        data={"username": username, "password": password, "login_token": form_token(page.text)},
    )


@pytest.fixture(scope="session")
async def console_client(app) -> AsyncIterator:
    """A factory of HTTP clients, each with its own cookie jar, signed in as a user."""
    made: list[httpx.AsyncClient] = []

    async def make(user=None) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 41000))
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        made.append(client)
        if user is not None:
            response = await sign_in(client, user.username)
            assert response.status_code == 303, response.text
        return client

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture(scope="session")
def new_case(client, pump):
    """A case through the public report API, registered and routed by the jobs."""

    async def make(**changes) -> int:
        created = await client.post("/api/v1/reports", json=report(**changes))
        assert created.status_code == 201, created.text
        await pump()
        return created.json()["case_id"]

    return make


def unique_text(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(5)}"


@pytest.fixture(scope="session")
def live_url(settings, database_url, redis_url) -> Iterator[str]:
    """The app on a real port, in a thread of its own, on the tests' database and Redis.

    The socket is bound and listening before the server starts, so a browser's first
    request simply waits in the backlog: nothing polls for readiness. uvicorn (0.54)
    installs signal handlers only on the main thread, so none are installed here."""
    from dispatch.app import create_app

    app = create_app(settings, database_url=database_url, redis_url=redis_url)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
    assert not thread.is_alive(), "test server did not stop"


@pytest.fixture(scope="session")
def seed(sessions):
    """Rows the Twilio channels would have written: a caller waiting in the queue, an SMS
    thread with the texter's first message."""
    from datetime import UTC, datetime

    from db.models import Report
    from db.models_telephony import SmsMessage, SmsThread, VoiceCall, VoiceCallback
    from workflows.intake import NewReport, record_report

    class Seed:
        async def waiting_call(self, phone: str = "+8613912345678") -> str:
            now = datetime.now(UTC)
            sid = "CA" + secrets.token_hex(16)
            async with sessions() as session, session.begin():
                session.add(
                    VoiceCall(
                        call_sid=sid,
                        phone=phone,
                        status="in-progress",
                        route="open",
                        menu_choice="normal",
                        queue="hotline-normal",
                        enqueued_at=now,
                        created_at=now,
                        updated_at=now,
                    )
                )
            return sid

        async def hotline_records(self, case_id: int, phone: str) -> dict[str, object]:
            """A call, a call-back task and an SMS thread, all tied to an existing case."""
            now = datetime.now(UTC)
            async with sessions() as session, session.begin():
                report_id = (
                    await session.execute(
                        select(Report.id).where(Report.case_id == case_id).limit(1)
                    )
                ).scalar_one()
                call = VoiceCall(
                    call_sid="CA" + secrets.token_hex(16),
                    phone=phone,
                    status="completed",
                    route="open",
                    case_id=case_id,
                    created_at=now,
                    updated_at=now,
                )
                thread = SmsThread(
                    phone=phone,
                    report_id=report_id,
                    case_id=case_id,
                    opened_at=now,
                    last_message_at=now,
                )
                session.add_all([call, thread])
                await session.flush()
                callback = VoiceCallback(
                    call_id=call.id,
                    phone=phone,
                    case_id=case_id,
                    reason="voicemail",
                    priority="orange",
                    due_at=now,
                )
                session.add(callback)
                await session.flush()
                return {
                    "call_sid": call.call_sid,
                    "thread_id": thread.id,
                    "callback_id": callback.id,
                }

        async def sms_thread(self, text: str, phone: str = "+8613700001111") -> tuple[int, int]:
            now = datetime.now(UTC)
            async with sessions() as session, session.begin():
                result = await record_report(
                    session,
                    NewReport(
                        channel="sms",
                        description=text,
                        external_id="SM" + secrets.token_hex(16),
                        reporter_phone=phone,
                        jurisdiction_code="990102",
                    ),
                )
                thread = SmsThread(
                    phone=phone,
                    report_id=result.report_id,
                    case_id=result.case_id,
                    opened_at=now,
                    last_message_at=now,
                )
                session.add(thread)
                await session.flush()
                session.add(
                    SmsMessage(
                        thread_id=thread.id,
                        direction="in",
                        kind="report",
                        phone=phone,
                        body=text,
                        status="received",
                        created_at=now,
                        updated_at=now,
                    )
                )
            return thread.id, result.case_id

    return Seed()


# Markup a reporter (or anyone typing into the product) might send, hoping it runs.
XSS = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    '"><svg onload=alert(3)>',
)


@dataclass
class Hostile:
    """A case whose every free-text field carries markup, and the records around it."""

    case_id: int
    police_referral_id: int
    thread_id: int  # an SMS conversation whose message is markup
    description: str
    child: str
    reporter: str
    note: str  # the police liaison's progress note
    reason: str  # the civil-affairs liaison's reason for returning their share
    sms: str
    police: AppUser  # the liaison who claimed the police share
    username: str  # a staff member whose name is markup, signed in (in the audit log)
    texts: tuple[str, ...] = XSS


@pytest.fixture(scope="session")
def hostile(client, pump, sessions, seed, make_user, login):
    """A factory of hostile cases: a fresh one each call (the newest on every list)."""

    async def make() -> Hostile:
        script, img, svg = XSS
        mark = secrets.token_hex(4)  # every call a new case, not a twin of the last one
        body = report(
            jurisdiction="990102002001",
            categories=["domestic_violence"],
            description=script + img + svg,  # 76 characters: whole in the lists' snippets
            child={"name": img, "age": 9, "gender": "female", "address": svg},
            reporter={
                "name": svg,
                "unit": script + mark,
                "role": "teacher",
                "phone": "13800138000",
            },
        )
        created = await client.post("/api/v1/reports", json=body)
        assert created.status_code == 201, created.text
        await pump()
        case_id = created.json()["case_id"]
        async with sessions() as session:
            shares = dict(
                (
                    await session.execute(
                        select(Referral.department_code, Referral.id).where(
                            Referral.case_id == case_id
                        )
                    )
                ).all()
            )
        police = await make_user("liaison", "police", "990102")
        civil = await make_user("liaison", "civil_affairs", "990102")
        note, reason = img + script, svg + script
        for user, department, action, payload in (
            (police, "police", "progress", {"note": note}),
            (civil, "civil_affairs", "return", {"reason": reason}),
        ):
            headers = await login(user)
            base = f"/api/v1/referrals/{shares[department]}"
            assert (await client.post(base + "/claim", headers=headers)).is_success
            done = await client.post(f"{base}/{action}", json=payload, headers=headers)
            assert done.is_success, done.text
        sms = svg + img + script + mark
        thread_id, _ = await seed.sms_thread(sms)
        # Whoever set up the account typed markup as the name; the sign-in is audited.
        username = f"{svg}{secrets.token_hex(3)}"
        async with sessions() as session, session.begin():
            session.add(
                AppUser(
                    username=username,
                    password_hash=police.password_hash,
                    role="operator",
                    jurisdiction_code="990100",
                )
            )
        signed = await client.post(
            "/api/v1/auth/token", data={"username": username, "password": PASSWORD}
        )
        assert signed.status_code == 200, signed.text
        return Hostile(
            case_id=case_id,
            police_referral_id=shares["police"],
            thread_id=thread_id,
            description=script + img + svg,
            child=img,
            reporter=svg,
            note=note,
            reason=reason,
            sms=sms,
            police=police,
            username=username,
        )

    return make
