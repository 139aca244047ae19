"""Test helpers for the Twilio channels: requests signed exactly as Twilio signs them, TwiML
parsing, a fake Twilio REST API in the test process that records what it is sent, a
clock tests move by hand, and outbox helpers. The fixtures are in `tests.twilio_fixtures`.
"""

import json
import secrets
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs
from xml.etree import ElementTree

import httpx
from redis import Redis
from sqlalchemy import func, select, update
from twilio.request_validator import RequestValidator

from db.models import Outbox
from dispatch.relay import relay_redis

AUTH_TOKEN = "test-auth-token-" + "0" * 16
PUBLIC = "https://hotline.example.test"  # the conftest settings' HOTLINE_PUBLIC_URL
ACCOUNT_SID = "AC" + "1" * 32
FROM_NUMBER = "+8610000000000"


def mobile() -> str:
    """A fresh mainland mobile number in E.164 (so tests never share a texter)."""
    return f"+86138{secrets.randbelow(10**8):08d}"


def signature(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


async def signed(
    client: httpx.AsyncClient,
    path: str,
    params: dict[str, str],
    *,
    token: str = AUTH_TOKEN,
    sign_url: str | None = None,
) -> httpx.Response:
    """POST form params as Twilio does: signed over the PUBLIC URL (not the test client's own
    http://testserver), which is what a proxy in front of the service looks like."""
    headers = {"X-Twilio-Signature": signature(sign_url or PUBLIC + path, params, token)}
    return await client.post(path, data=params, headers=headers)


def parse(response: httpx.Response) -> ElementTree.Element:
    """The TwiML document's root (<Response>)."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    root = ElementTree.fromstring(response.content)
    assert root.tag == "Response"
    return root


@dataclass
class Sent:
    path: str
    form: dict[str, str]
    authorization: str | None


@dataclass
class FakeTwilio:
    """Twilio's REST API, as far as sending messages goes. `script` holds the answers to
    give, in order (status, JSON body); after it runs out every request succeeds."""

    script: list[tuple[int, dict]] = field(default_factory=list)
    requests: list[Sent] = field(default_factory=list)
    # Media it serves by path (recordings), and who asked for them.
    media: dict[str, bytes] = field(default_factory=dict)
    fetched: list[Sent] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}"

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                fake.requests.append(Sent(self.path, form, self.headers.get("authorization")))
                if fake.script:
                    status, body = fake.script.pop(0)
                else:
                    sid = "SM" + secrets.token_hex(16)
                    status, body = 201, {"sid": sid, "status": "queued", "to": form.get("To")}
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:  # noqa: N802
                fake.fetched.append(Sent(self.path, {}, self.headers.get("authorization")))
                body = fake.media.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("content-type", "audio/mpeg")
                self.send_header("content-length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


async def make_due(sessions, topic: str = "sms.send") -> int:
    """Time passes for the outbox: rows scheduled for later are due now. Returns how many."""
    async with sessions() as session, session.begin():
        result = await session.execute(
            update(Outbox)
            .where(Outbox.topic == topic, Outbox.relayed_at.is_(None))
            .values(available_at=func.now())
        )
        return result.rowcount


async def scheduled(sessions, topic: str = "sms.send") -> list[Outbox]:
    async with sessions() as session:
        rows = await session.execute(
            select(Outbox).where(Outbox.topic == topic, Outbox.relayed_at.is_(None))
        )
        return list(rows.scalars())


class Clock:
    def __init__(self, start: datetime) -> None:
        self.at = start

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


def dead_redis() -> Redis:
    """A Redis client pointed at a port nobody listens on: what an outage looks like."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return relay_redis(f"redis://127.0.0.1:{port}/0")
