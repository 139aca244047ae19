"""Result feedback to partners, out: the `partner.deliver` job.

One partner's messages go out strictly in id order, one at a time: the first undelivered
message is the head of the line, and nothing behind it is tried until the partner has
taken it (a 2xx). A failed try is recorded (status or error, duration), the head waits out
its backoff, and a wake-up is written to the outbox for then, so a partner that is down for
an hour gets everything afterwards, in order. Jobs for the same partner may overlap (a new
message, a wake-up, a retry by hand): a transaction-scoped advisory lock lets one drain and
the others leave; the drainer looks again after letting go, so nothing is left waiting.

Each try is signed afresh (timestamp + raw body, the partner's own secret) and carries
X-Hotline-Message-Id: a partner that took a message but whose answer was lost sees the same
id again and can drop it.
"""

import json
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import httpx
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.partners.secrets import open_box
from channels.partners.signature import signed_headers
from db import clock
from db.engine import engine_of, raw_connection, transaction
from db.handlers import JobContext
from db.models import Outbox
from db.partners import Partner, PartnerAttempt, PartnerMessage
from db.settings import secret_key
from workflows.partners.forwards import backoff_seconds, delivery_timeout

log = logging.getLogger("hotline.partner")

TOPIC = "partner.deliver"
MESSAGE_ID = "X-Hotline-Message-Id"
# One job delivers at most this many messages, then hands over to a fresh job (RQ's job
# timeout stays far away, and other queues get their turn).
BATCH = 200


@cache
def _tls() -> ssl.SSLContext:
    """httpx's default verification, built once per process: loading the CA bundle cost
    36 ms of CPU (measured here), which a new client per job paid on every delivery, the
    largest single cost of a forwarded order under a burst."""
    return httpx.create_ssl_context()


@dataclass
class Drained:
    delivered: int = 0
    failed: int = 0
    busy: bool = False  # another job held the partner's line


async def deliver(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Job handler for `partner.deliver`."""
    await drain(ctx.sessions, secret_key(ctx.settings), payload["partner_id"])


async def drain(
    sessions: async_sessionmaker[AsyncSession],
    key: str,
    partner_id: int,
    *,
    now: Callable[[], datetime] | None = None,
    request_timeout: float | None = None,
) -> Drained:
    """Deliver the partner's due messages in order until one fails or none is left."""
    result = Drained()
    now = now or (lambda: clock.now())
    seconds = delivery_timeout() if request_timeout is None else request_timeout
    async with httpx.AsyncClient(timeout=seconds, follow_redirects=False, verify=_tls()) as http:
        while True:
            async with sessions() as holder, holder.begin():
                got = await holder.scalar(
                    text("SELECT pg_try_advisory_xact_lock(hashtextextended(:k, 0))"),
                    {"k": f"partner-line:{partner_id}"},
                )
                if not got:
                    result.busy = True
                    return result
                more = await _drain_locked(sessions, key, partner_id, http, now, result)
            if not more:
                return result
            # Let go, then look again: a message written while we held the line, whose own
            # job found the line busy, is ours to send.


@dataclass
class Head:
    """A message at (or near) the head of the line, as read for sending."""

    id: int
    partner_id: int
    body: dict[str, Any]
    attempts: int
    next_attempt_at: datetime


# The next undelivered messages in line order (the partial index on partner_id, id), read a
# batch at a time: nothing behind a message is sent before it is taken, so reading ahead
# changes no order, and only the line's holder (the advisory lock) sends or marks them.
_HEADS_SQL = (
    "SELECT id, partner_id, body::text AS body, attempts, next_attempt_at FROM partner_message"
    " WHERE partner_id = $1 AND delivered_at IS NULL AND id > $2 ORDER BY id LIMIT $3"
)
# A message taken: its attempt and its delivery in one statement, committed on its own
# before the next message is sent (so a crash repeats at most the one in flight, which the
# partner drops by its X-Hotline-Message-Id).
_TAKEN_SQL = (
    "WITH attempt AS (INSERT INTO partner_attempt (message_id, at, duration_ms, http_status)"
    " VALUES ($1, $2, $3, $4)) UPDATE partner_message SET attempts = attempts + 1,"
    " last_error = NULL, delivered_at = $2 WHERE id = $1 AND delivered_at IS NULL"
)
READ_AHEAD = 50


async def _drain_locked(
    sessions: async_sessionmaker[AsyncSession],
    key: str,
    partner_id: int,
    http: httpx.AsyncClient,
    now: Callable[[], datetime],
    result: Drained,
) -> bool:
    """Send heads while they succeed. True when a due message may be waiting.

    One pooled connection for the whole batch, raw asyncpg: a taken message costs one
    statement (attempt + delivered), not an ORM session and a transaction; a failure is
    rare and keeps the full bookkeeping (attempt, backoff, wake-up) in one transaction.
    """
    async with sessions() as session:
        partner = await session.get(Partner, partner_id)
    secret = open_box(key, partner.secret_box) if partner else None
    if partner is None or not partner.active or not partner.callback_url or secret is None:
        return False
    sent = 0
    after = 0
    async with raw_connection(engine_of(sessions)) as conn:
        while sent < BATCH:
            rows = await conn.fetch(_HEADS_SQL, partner_id, after, min(READ_AHEAD, BATCH - sent))
            if not rows:
                return False
            for row in rows:
                head = Head(
                    row["id"],
                    row["partner_id"],
                    json.loads(row["body"]),
                    row["attempts"],
                    row["next_attempt_at"],
                )
                if head.next_attempt_at > now():
                    return False  # waiting out its backoff; its wake-up is in the outbox
                outcome = await _post(http, partner.callback_url, secret, head)
                sent += 1
                after = head.id
                if not outcome.ok:
                    await _record(sessions, head, outcome, now())
                    result.failed += 1
                    return False
                await conn.execute(
                    _TAKEN_SQL, head.id, now(), outcome.duration_ms, outcome.http_status
                )
                result.delivered += 1
    await _wake(sessions, partner_id)  # more than a batch: a fresh job goes on
    return False


@dataclass
class Outcome:
    ok: bool
    duration_ms: int
    http_status: int | None = None
    error: str | None = None


async def _post(http: httpx.AsyncClient, url: str, secret: str, message: Head) -> Outcome:
    body = json.dumps({"message_id": message.id, **message.body}, ensure_ascii=False).encode()
    headers = {
        "content-type": "application/json; charset=utf-8",
        MESSAGE_ID: str(message.id),
        **signed_headers(secret, body),
    }
    started = time.perf_counter()
    try:
        response = await http.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        error, status = "timeout", None
    except httpx.HTTPError as exc:
        error, status = type(exc).__name__, None
    else:
        status = response.status_code
        error = None if 200 <= status < 300 else f"http_{status}"
    duration = int((time.perf_counter() - started) * 1000)
    return Outcome(error is None, duration, status, error)


async def _record(
    sessions: async_sessionmaker[AsyncSession],
    message: Head,
    outcome: Outcome,
    at: datetime,
) -> None:
    """The attempt, and the message's new state, together; a failure also books its
    wake-up in the outbox, so the retry survives any restart."""
    attempts = message.attempts + 1
    values: dict[str, Any] = {"attempts": attempts, "last_error": outcome.error}
    if outcome.ok:
        values["delivered_at"] = at
    else:
        values["next_attempt_at"] = at + timedelta(seconds=backoff_seconds(attempts))
        log.warning("partner feedback #%s not taken: %s", message.id, outcome.error)
    async with transaction(sessions) as session:
        session.add(
            PartnerAttempt(
                message_id=message.id,
                at=at,
                duration_ms=outcome.duration_ms,
                http_status=outcome.http_status,
                error=outcome.error,
            )
        )
        await session.execute(
            update(PartnerMessage).where(PartnerMessage.id == message.id).values(**values)
        )
        if not outcome.ok:
            session.add(wake_row(message.partner_id, values["next_attempt_at"]))


def wake_row(partner_id: int, at: datetime | None = None) -> Outbox:
    """The outbox row that starts the partner's delivery job (now, or at `at`)."""
    row = Outbox(topic=TOPIC, payload={"partner_id": partner_id})
    if at is not None:
        row.available_at = at
    return row


def pending_wake_sql(partner: str) -> str:
    """A query for the id of a wake-up of the partner's line (`partner`, an SQL expression)
    that is due and not yet relayed, locked: the relay skips locked rows, so it cannot send
    this one before the caller's transaction commits, and its job then sees what the caller
    wrote. One held by the relay (or by another writer) is skipped: the caller writes its
    own (`wake_row`)."""
    return (
        "SELECT id FROM outbox WHERE relayed_at IS NULL AND available_at <= now()"
        " AND done_at IS NULL AND topic = 'partner.deliver'"
        f" AND payload @> jsonb_build_object('partner_id', {partner})"
        " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
    )


_PENDING_WAKE = text(pending_wake_sql("CAST(:partner_id AS integer)"))


async def wake(session: AsyncSession, partner_id: int) -> None:
    """Start the partner's delivery once the caller's transaction commits.

    A due wake-up that waits to be relayed serves every message written before it goes
    out: a burst of orders from one partner costs one delivery job per relay pass, not one
    per order (each extra job found the line drained, or busy, and left)."""
    pending = await session.scalar(_PENDING_WAKE, {"partner_id": partner_id})
    if pending is None:
        session.add(wake_row(partner_id))


async def _wake(sessions: async_sessionmaker[AsyncSession], partner_id: int) -> None:
    async with transaction(sessions) as session:
        await wake(session, partner_id)


async def wake_stalled(session: AsyncSession, now: datetime, grace: timedelta) -> int:
    """The scheduler's safety net: partners whose head has been due for longer than
    `grace` (its wake-up lost, say a job that failed for good) get a fresh wake-up."""
    rows = (
        await session.execute(
            text(
                """
                SELECT DISTINCT ON (m.partner_id) m.partner_id, m.next_attempt_at
                FROM partner_message m
                WHERE m.delivered_at IS NULL
                ORDER BY m.partner_id, m.id
                """
            )
        )
    ).all()
    stalled = [r.partner_id for r in rows if r.next_attempt_at < now - grace]
    for partner_id in stalled:
        await wake(session, partner_id)
    return len(stalled)
