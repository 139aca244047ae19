"""The database down: every channel answers honestly, in its own form, without the database.

Two ways down: an app whose database URL points at a port where nothing listens, and an app
whose database vanishes mid-life (its connections go through a small TCP relay the test
closes), so pooled connections die under it.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer

from dispatch.runtime import Runtime
from dispatch.staff.auth import issue_token
from tests.fixtures.apps import app_client
from tests.fixtures.processes import _free_port
from tests.fixtures.twilio_fake import ACCOUNT_SID, FROM_NUMBER, mobile, parse, signed
from workflows.cases import receipts
from workflows.config import load

NUMBER = load("channels")["hotline"]["number"]
LEAKS = ("Traceback", "asyncpg", "sqlalchemy", "SELECT", "INSERT", "Error", "127.0.0.1")
REPORT = {"reporter": {"role": "teacher"}, "description": "学生称父亲酒后殴打"}


@pytest.fixture
async def down(settings, redis_url) -> AsyncIterator[httpx.AsyncClient]:
    """The app on a database URL where nothing listens."""
    url = f"postgresql://postgres@127.0.0.1:{_free_port()}/nothing"
    async with app_client(settings, url, redis_url) as client:
        yield client


def _clean(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text


def _call() -> dict[str, str]:
    return {"CallSid": "CA" + "1" * 32, "AccountSid": ACCOUNT_SID, "From": mobile(),
            "To": FROM_NUMBER, "CallStatus": "ringing"}


def _sms() -> dict[str, str]:
    return {"MessageSid": "SM" + "2" * 32, "AccountSid": ACCOUNT_SID, "From": mobile(),
            "To": FROM_NUMBER, "Body": "有孩子被打", "NumMedia": "0"}


async def test_the_json_api_answers_503_database_unavailable_in_the_contract_shape(down):
    runtime: Runtime = down.app.state.runtime
    token = issue_token(runtime, type("U", (), {"id": 1, "token_version": 0})())
    answers = [
        await down.post("/api/v1/reports", json=REPORT),
        await down.get(f"/api/v1/receipts/{receipts.display(receipts.new_code())}"),
        await down.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"}),
        await down.post("/api/v1/auth/token", data={"username": "li", "password": "x" * 12}),
    ]
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"].startswith("application/json")
        error = answer.json()["error"]
        assert set(answer.json()) == {"error"} and error["code"] == "database_unavailable"
        assert "110" in error["message"] and NUMBER in error["message"]
        _clean(answer.text)


async def test_the_web_form_shows_a_chinese_page_with_the_hotline_number_and_110(down, settings):
    shown = await down.get("/report")
    nonce = "n" * 22
    token = URLSafeTimedSerializer(settings.hotline_secret_key, salt="report-form").dumps(nonce)
    form = {"csrf_token": token, "description": "学生称父亲酒后殴打", "reporter_role": "teacher"}
    down.cookies.set("hotline_csrf", nonce, path="/report")
    posted = await down.post("/report", data=form)
    for page in (shown, posted):
        assert page.status_code == 503
        assert page.headers["content-type"].startswith("text/html")
        assert "紧急情况请拨打110" in page.text and NUMBER in page.text
        assert "暂时无法" in page.text
        _clean(page.text)


async def test_twilio_voice_and_sms_get_twiml_that_needs_no_database(down):
    voice = await signed(down, "/channels/twilio/voice", _call())
    assert voice.status_code == 200 and voice.headers["content-type"] == "application/xml"
    root = parse(voice)
    spoken = root.findall("Say")
    assert spoken and all(s.get("language") == "zh-CN" for s in spoken)
    assert "110" in spoken[-1].text and NUMBER in spoken[-1].text
    assert root.find("Hangup") is not None and root.find("Dial") is None

    sms = await signed(down, "/channels/twilio/sms", _sms())
    assert sms.status_code == 200
    (message,) = parse(sms).findall("Message")
    assert "110" in message.text and NUMBER in message.text
    for answer in (voice, sms):
        _clean(answer.text)


async def test_the_signature_is_still_checked_first(down):
    for path, params in (("/channels/twilio/voice", _call()), ("/channels/twilio/sms", _sms())):
        assert (await down.post(path, data=params)).status_code == 403
        forged = await signed(down, path, params, token="not-the-token")
        assert forged.status_code == 403


async def test_with_a_backup_number_the_call_is_put_through_to_it(down):
    runtime: Runtime = down.app.state.runtime
    runtime.settings = runtime.settings.model_copy(
        update={"hotline_backup_number": "+8699012355"}
    )
    root = parse(await signed(down, "/channels/twilio/voice", _call()))
    assert [child.tag for child in root] == ["Say", "Dial", "Say", "Hangup"]
    assert root.find("Dial").text == "+8699012355"
    assert "110" in root.find("Say").text


async def test_the_fallback_urls_answer_the_same_twiml_signed_and_without_a_database(down):
    voice = await signed(down, "/channels/twilio/voice/fallback", _call())
    sms = await signed(down, "/channels/twilio/sms/fallback", _sms())
    assert voice.status_code == sms.status_code == 200
    assert NUMBER in parse(voice).find("Say").text
    assert "110" in parse(sms).find("Message").text
    unsigned = await down.post("/channels/twilio/voice/fallback", data=_call())
    assert unsigned.status_code == 403


async def test_the_fallback_urls_are_in_the_openapi_schema(client):
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/channels/twilio/voice/fallback" in paths and "/channels/twilio/sms/fallback" in paths


class _Relay:
    """A TCP relay to the real database that the test can cut: every connection through it
    dies at once, as when the database server stops."""

    def __init__(self, database_url: str) -> None:
        parts = urlsplit(database_url)
        socket_dir = parse_qs(parts.query).get("host", [""])[0]  # pgserver: a unix socket
        port = parts.port or 5432
        self.unix = f"{socket_dir}/.s.PGSQL.{port}" if socket_dir.startswith("/") else None
        self.target = (parts.hostname or "127.0.0.1", port)
        self.pipes: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.unix:
            up_reader, up_writer = await asyncio.open_unix_connection(self.unix)
        else:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.pipes |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    async def cut(self) -> None:
        assert self.server
        self.server.close()
        for pipe in self.pipes:
            pipe.transport.abort()
        await self.server.wait_closed()


async def test_a_database_that_stops_under_a_running_app_gives_503_not_500(
    settings, database_url, redis_url
):
    relay = _Relay(database_url)
    port = await relay.start()
    parts = urlsplit(database_url)
    # The credentials go through the relay too (the embedded server asks a password).
    login = parts.username or "postgres"
    if parts.password:
        login += f":{parts.password}"
    through = urlunsplit(parts._replace(netloc=f"{login}@127.0.0.1:{port}", query=""))
    async with app_client(settings, through, redis_url) as client:
        assert (await client.post("/api/v1/reports", json=REPORT)).status_code == 201
        await relay.cut()
        lost = await client.post("/api/v1/reports", json=REPORT)
        assert lost.status_code == 503, lost.text
        assert lost.json()["error"]["code"] == "database_unavailable"
        page = await client.get("/report")
        assert page.status_code == 503 and "紧急情况请拨打110" in page.text
        voice = await signed(client, "/channels/twilio/voice", _call())
        assert "110" in parse(voice).find("Say").text
