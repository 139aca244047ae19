"""Fixtures for the partner forwards' tests (load with `pytest_plugins`): partners with
known secrets, signed posting, and a local partner server that records our callbacks and
answers as the test scripts it (fail, hang, recover)."""

import json
import secrets
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from channels.partner_secrets import seal
from channels.partner_signature import SIGNATURE, TIMESTAMP, check, signed_headers
from db.models import Outbox
from db.models_partner import Partner, PartnerMessage

SECRETS = {
    source: f"{source}-shared-secret-{secrets.token_hex(8)}" for source in ("110", "12345", "12355")
}


@dataclass
class Received:
    message: dict[str, Any]
    headers: dict[str, str]
    signature_ok: bool


@dataclass
class FakePartner:
    """The partner's callback endpoint. `script` holds answers to give in order: an int is
    a status code, "hang" holds the request past our timeout; then every answer is 200."""

    secret: str
    script: list[int | str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    taken: list[dict[str, Any]] = field(default_factory=list)  # answered 2xx
    release: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}/callback"

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                ok = (
                    check(
                        fake.secret,
                        self.headers.get(TIMESTAMP),
                        self.headers.get(SIGNATURE),
                        body,
                        datetime.now(UTC).timestamp(),
                    )
                    is None
                )
                message = json.loads(body)
                fake.received.append(Received(message, dict(self.headers), ok))
                answer = fake.script.pop(0) if fake.script else 200
                if answer == "hang":
                    fake.release.wait(10)
                    answer = 200  # too late: the caller gave up already
                if 200 <= int(answer) < 300:
                    fake.taken.append(message)
                self.send_response(int(answer))
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


async def set_partner(
    app, source: str, *, secret: str | None = None, callback_url: str | None = None
) -> None:
    """Create or update the partner, as `hotline partner add` does."""
    runtime = app.state.runtime
    box = seal(runtime.secret_key, secret or SECRETS[source])
    async with runtime.sessions() as session, session.begin():
        stmt = insert(Partner).values(
            source=source, name=source, secret_box=box, callback_url=callback_url
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["source"],
                set_={"secret_box": box, "callback_url": callback_url, "active": True},
            )
        )
    getattr(app.state, "partner_secrets", {}).pop(source, None)


@pytest.fixture(scope="session")
async def partners(app) -> dict[str, str]:
    """All three partners, known secrets, no callback URL (so no feedback is owed)."""
    for source in SECRETS:
        await set_partner(app, source)
    return SECRETS


def order(**changes: Any) -> dict[str, Any]:
    body = {
        "external_id": f"WO-{secrets.token_hex(6)}",
        "content": "群众来电反映邻居家孩子经常被打，昨晚哭喊声很大。",
        "received_at": datetime.now(UTC).isoformat(),
        "caller_phone": "13800138000",
        "caller_name": "张女士",
        "address": "东湖市湖东区幸福街道幸福里小区3栋",
        "child": {"name": "小明", "age": 8, "gender": "male"},
    }
    body.update(changes)
    return body


@pytest.fixture
def post_forward(client, partners) -> Callable[..., Any]:
    """POST a work order signed as the partner would (or not, as the test says)."""

    async def post(
        source: str,
        body: dict[str, Any] | bytes,
        *,
        secret: str | None = None,
        headers: dict[str, str] | None = None,
        at: float | None = None,
        path: str = "",
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        signed = signed_headers(secret or partners[source], raw, now=at)
        final = {
            k.lower(): v
            for k, v in [("content-type", "application/json"), *signed.items()]
            + list((headers or {}).items())
        }
        final = {k: v for k, v in final.items() if v is not None}
        return await client.post(f"/api/v1/forwards/{source}{path}", content=raw, headers=final)

    return post


@pytest.fixture
async def partner_server(app, partners, pump) -> AsyncIterator[Callable[..., Any]]:
    """Point partners' callbacks at local fake servers for one test; afterwards the
    partners get no feedback again and no wake-up of theirs is left for later tests."""
    started: list[tuple[str, FakePartner]] = []

    await pump()  # earlier tests' jobs must not find the callback this test sets

    async def make(source: str = "12345", script: list[int | str] | None = None) -> FakePartner:
        fake = FakePartner(partners[source], list(script or []))
        fake.start()
        started.append((source, fake))
        await set_partner(app, source, callback_url=fake.url)
        return fake

    yield make
    for source, fake in started:
        await set_partner(app, source)
        fake.stop()
    async with app.state.runtime.sessions() as session, session.begin():
        # What the test left undelivered must not head a later test's line.
        await session.execute(
            update(PartnerMessage)
            .where(PartnerMessage.delivered_at.is_(None))
            .values(delivered_at=func.now(), last_error="test_teardown")
        )
        await session.execute(
            update(Outbox)
            .where(Outbox.topic == "partner.deliver", Outbox.relayed_at.is_(None))
            .values(available_at=func.now())
        )
    await pump()


async def undelivered(sessions) -> int:
    async with sessions() as session:
        return await session.scalar(
            select(func.count()).where(PartnerMessage.delivered_at.is_(None))
        )
