"""Staff replies to texters: queued with the outbox, sent by an RQ job through Twilio's REST
API, their delivery status kept from Twilio's status callbacks.

Never dropped: a reply is a row first (status `pending`) with an outbox row in the same
transaction, so a Redis outage only delays it. A Twilio failure that may pass (5xx, 429, a
timeout, no connection, not configured yet) reschedules the send with a growing pause via
a new outbox row, until `give_up_after_hours`; Twilio refusing the message (4xx) marks it
`failed` with Twilio's error code. An opted-out number is never sent to (`suppressed`).
A worker that dies mid-request leaves the row `submitting`; once no attempt can still be in
flight, the send is tried again (at least once, never silently lost).
"""

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from twilio.base.exceptions import TwilioRestException

from channels.sms.optouts import is_opted_out, opt_out
from channels.sms.staff import twilio_client, twilio_configured
from channels.twilio.webhook import public_url
from db import clock
from db.engine import transaction
from db.handlers import JobContext
from db.metrics import SMS
from db.models import Outbox
from db.settings import Settings
from db.telephony import SmsMessage, SmsThread
from db.timeline import case_event
from workflows import config
from workflows.config.schema import Sms
from workflows.errors import Conflict
from workflows.telephony.delivery_status import MESSAGE_RANKS, advances, ranks_below

log = logging.getLogger("hotline.sms")

TOPIC = "sms.send"
STATUS_PATH = "/channels/twilio/sms/status"
SENDABLE = ("pending", "retrying", "submitting")
# Longer than an RQ job may run (dispatch.worker.relay.JOB_TIMEOUT, 120 s): a `submitting` row older
# than this has no attempt in flight any more.
IN_FLIGHT = timedelta(seconds=180)
# Twilio: "the recipient has opted out" (STOP sent to Twilio itself).
TWILIO_UNSUBSCRIBED = 21610


def _config() -> Sms:
    return config.channels().sms


async def queue_sms(
    session: AsyncSession,
    *,
    phone: str,
    body: str,
    kind: str,
    now: datetime,
    thread_id: int | None = None,
    author_id: int | None = None,
) -> SmsMessage:
    """An outgoing SMS, pending, and the outbox row that sends it, in the caller's
    transaction: what a staff reply and a notice to a reporter both are."""
    message = SmsMessage(
        thread_id=thread_id,
        direction="out",
        kind=kind,
        phone=phone,
        body=body,
        status="pending",
        author_id=author_id,
        created_at=now,
        updated_at=now,
    )
    session.add(message)
    await session.flush()
    session.add(Outbox(topic=TOPIC, payload={"message_id": message.id}))
    return message


async def queue_reply(
    session: AsyncSession,
    thread: SmsThread,
    body: str,
    *,
    author_id: int,
    actor: str,
    now: datetime,
) -> SmsMessage:
    """A staff reply on a thread, in the caller's transaction. 409 for an opted-out number."""
    if await is_opted_out(session, thread.phone):
        raise Conflict("sms_opted_out", "对方已回复退订，不能再向该号码发送短信")
    message = await queue_sms(
        session,
        phone=thread.phone,
        body=body,
        kind="reply",
        now=now,
        thread_id=thread.id,
        author_id=author_id,
    )
    thread.last_message_at = now
    session.add(
        case_event(
            case_id=thread.case_id,
            event="sms_reply",
            actor=actor,
            actor_id=author_id,
            reason="向举报人发送短信",
            data={"thread_id": thread.id, "message_id": message.id},
            created_at=now,
        )
    )
    return message


def status_callback_url(settings: Settings, message_id: int) -> str:
    """Carries our id, so a callback that beats the send's own bookkeeping still matches."""
    return public_url(settings, f"{STATUS_PATH}?m={message_id}")


def _backoff(attempts: int) -> timedelta:
    steps = _config().retry_backoff_seconds
    return timedelta(seconds=steps[min(max(attempts, 1), len(steps)) - 1])


def _retry_later(session: AsyncSession, message: SmsMessage, error: str, now: datetime) -> None:
    message.status, message.error, message.updated_at = "retrying", error[:80], now
    session.add(
        Outbox(
            topic=TOPIC,
            payload={"message_id": message.id},
            available_at=now + _backoff(message.attempts),
        )
    )


async def _locked(session: AsyncSession, message_id: int) -> SmsMessage | None:
    return (
        await session.execute(
            select(SmsMessage)
            .where(SmsMessage.id == message_id, SmsMessage.direction == "out")
            .with_for_update()
        )
    ).scalar_one_or_none()


async def _claim(ctx: JobContext, message_id: int, now: datetime) -> SmsMessage | None:
    """Decide in one short transaction whether to send now; the request runs outside it."""
    async with transaction(ctx.sessions) as session:
        message = await _locked(session, message_id)
        if message is None or message.status not in SENDABLE:
            return None
        if message.status == "submitting" and message.updated_at > now - IN_FLIGHT:
            # An earlier attempt may still be talking to Twilio: look again once it cannot be.
            session.add(
                Outbox(
                    topic=TOPIC,
                    payload={"message_id": message.id},
                    available_at=message.updated_at + IN_FLIGHT,
                )
            )
            return None
        if await is_opted_out(session, message.phone):
            message.status, message.updated_at = "suppressed", now
            return None
        if message.created_at < now - timedelta(hours=_config().give_up_after_hours):
            message.status, message.updated_at = "failed", now
            message.error = f"gave_up:{message.error or ''}"[:80]
            log.error("sms reply #%s given up after %s attempts", message.id, message.attempts)
            return None
        if not twilio_configured(ctx.settings) or not ctx.settings.hotline_public_url:
            _retry_later(session, message, "twilio_not_configured", now)
            log.error("sms reply #%s waits: Twilio is not configured", message.id)
            return None
        message.status, message.updated_at = "submitting", now
        message.attempts += 1
        return message


async def send_reply(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Job handler for `sms.send`. Idempotent: a reply past `submitting` is left alone."""
    message = await _claim(ctx, payload["message_id"], clock.now())
    if message is None:
        return
    client = twilio_client(ctx.settings)
    try:
        created = await asyncio.to_thread(
            client.messages.create,
            to=message.phone,
            from_=ctx.settings.twilio_from_number,
            body=message.body,
            status_callback=status_callback_url(ctx.settings, message.id),
        )
    except Exception as exc:  # noqa: BLE001 - every failure is recorded and decided on below
        SMS.labels("reply", "failed").inc()
        await _record_failure(ctx, message.id, exc)
    else:
        SMS.labels("reply", "sent").inc()
        await _record_submitted(ctx, message.id, created.sid, created.status)


async def _record_submitted(ctx: JobContext, message_id: int, sid: str, status: str) -> None:
    now = clock.now()
    async with transaction(ctx.sessions) as session:
        message = await _locked(session, message_id)
        if message is None:
            return
        message.message_sid = message.message_sid or sid
        message.submitted_at, message.updated_at, message.error = now, now, None
        new = status if status in MESSAGE_RANKS else "queued"
        if advances(message.status, new, MESSAGE_RANKS):
            message.status = new
    log.info("sms reply #%s handed to Twilio", message_id)


async def _record_failure(ctx: JobContext, message_id: int, exc: Exception) -> None:
    now = clock.now()
    rest = exc if isinstance(exc, TwilioRestException) else None
    permanent = rest is not None and 400 <= rest.status < 500 and rest.status not in (408, 429)
    error = f"twilio_{rest.code or rest.status}" if rest else type(exc).__name__
    async with transaction(ctx.sessions) as session:
        message = await _locked(session, message_id)
        if message is None or message.status != "submitting":
            return  # a status callback got there first: Twilio has it after all
        if rest is not None and rest.code == TWILIO_UNSUBSCRIBED:
            await opt_out(session, message.phone, "twilio", now)
        if permanent:
            message.status, message.error, message.updated_at = "failed", error[:80], now
        else:
            _retry_later(session, message, error, now)
    log.warning(
        "sms reply #%s not sent (%s)%s", message_id, error, "" if permanent else "; will retry"
    )


async def record_delivery(
    session: AsyncSession,
    *,
    message_id: int | None,
    sid: str,
    status: str,
    error_code: str | None,
) -> bool:
    """A status callback: moves the message's status forward only (never back), so
    callbacks arriving late, twice or out of order change nothing wrongly."""
    lower = ranks_below(status, MESSAGE_RANKS)
    if not lower:
        return False
    which = SmsMessage.id == message_id if message_id else SmsMessage.message_sid == sid
    values: dict[str, Any] = {
        "status": status,
        "message_sid": func.coalesce(SmsMessage.message_sid, sid),
        "updated_at": clock.now(),
    }
    if error_code:
        values["error"] = f"twilio_{error_code}"[:80]
    result = await session.execute(
        update(SmsMessage)
        .where(
            which,
            SmsMessage.direction == "out",
            or_(SmsMessage.message_sid.is_(None), SmsMessage.message_sid == sid),
            SmsMessage.status.in_(lower),
        )
        .values(**values)
    )
    return result.rowcount > 0
