"""Call records: one row per CallSid, moved along by Twilio's voice webhooks and status
callbacks, and the reports and call-backs that come from a call.

Every step is idempotent: the route (open, closed, blocked) and the menu choice are decided
once and replayed on a retry; a status only moves forward; a voicemail is one report per
call (record_report on `vm-<CallSid>`), a call-back one per call (unique call_id).
"""

from datetime import datetime

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from channels.callers import active_block, caller_number
from db.crypto import phone_index
from db.telephony import VoiceCall, VoiceCallback
from db.timeline import case_event
from workflows import config
from workflows.cases.intake import IntakeResult, NewReport, record_report
from workflows.telephony.callback_policy import (
    REASON_LABELS,
    CallOutcome,
    callback_reason,
    due,
    priority,
)
from workflows.telephony.channel_texts import text
from workflows.telephony.delivery_status import CALL_FINAL, CALL_RANKS, advances
from workflows.telephony.opening_hours import is_open

ACTOR = "twilio:voice"
# Queue results after which the caller has spoken with an operator.
BRIDGED = ("bridged", "bridging-in-process", "redirected-from-bridged")


def queue_name(choice: str) -> str:
    voice = config.channels().voice
    return voice.emergency_queue if choice == "emergency" else voice.normal_queue


async def _locked(session: AsyncSession, sid: str) -> VoiceCall | None:
    return (
        await session.execute(select(VoiceCall).where(VoiceCall.call_sid == sid).with_for_update())
    ).scalar_one_or_none()


async def call_for(
    session: AsyncSession, sid: str, raw_from: str | None, status: str | None, now: datetime
) -> VoiceCall:
    """The call's row, locked; created at first sight, when its route is decided for good."""
    call = await _locked(session, sid)
    if call is not None:
        return call
    phone = caller_number(raw_from)
    if await active_block(session, phone, now):
        route = "blocked"
    else:
        route = "open" if is_open(now) else "closed"
    await session.execute(
        insert(VoiceCall)
        .values(
            call_sid=sid,
            phone=phone,
            phone_index=phone_index(phone),
            status=status if status in CALL_RANKS else "ringing",
            route=route,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["call_sid"])
    )
    call = await _locked(session, sid)
    assert call is not None
    return call


async def find_call(session: AsyncSession, sid: str) -> VoiceCall | None:
    return await _locked(session, sid)


def choose(call: VoiceCall, digits: str, now: datetime) -> None:
    """The menu key: 1 is "a child is in danger now". The first answer stands."""
    if call.menu_choice is not None:
        return
    call.menu_choice = "emergency" if digits == "1" else "normal"
    if call.route == "open":
        call.queue, call.enqueued_at = queue_name(call.menu_choice), now
    call.updated_at = now


def is_waiting() -> ColumnElement[bool]:
    """Calls in a queue now (matches the partial index ix_voice_call_waiting)."""
    return and_(
        VoiceCall.queue.is_not(None),
        VoiceCall.queue_left_at.is_(None),
        VoiceCall.answered_at.is_(None),
        VoiceCall.ended_at.is_(None),
    )


async def waiting_calls(
    session: AsyncSession, *where: ColumnElement[bool], limit: int = 200
) -> list[VoiceCall]:
    """Who waits now (among `where`), emergency queue first, longest wait first."""
    emergency = queue_name("emergency")
    return list(
        (
            await session.execute(
                select(VoiceCall)
                .where(is_waiting(), *where)
                .order_by((VoiceCall.queue == emergency).desc(), VoiceCall.enqueued_at)
                .limit(limit)
            )
        ).scalars()
    )


async def serve_first(session: AsyncSession) -> str:
    """The queue an operator should take next: emergency whenever anyone waits in it."""
    emergency = queue_name("emergency")
    someone = await session.scalar(
        select(VoiceCall.id).where(is_waiting(), VoiceCall.queue == emergency).limit(1)
    )
    return emergency if someone is not None else queue_name("normal")


def max_wait(call: VoiceCall) -> int:
    voice = config.channels().voice
    if call.menu_choice == "emergency":
        return voice.emergency_max_wait_seconds
    return voice.max_wait_seconds


def left_queue(call: VoiceCall, result: str, waited: int, now: datetime) -> None:
    if call.queue_result is not None:
        return
    call.queue_result, call.queue_left_at, call.queue_seconds = result[:30], now, waited
    if result in BRIDGED and call.answered_at is None:
        call.answered_at = now
    call.updated_at = now


def answered(call: VoiceCall, waited: int, now: datetime) -> None:
    """An operator's console dequeued the caller (the <Queue url> request)."""
    if call.answered_at is None:
        call.answered_at, call.queue_seconds, call.updated_at = now, waited, now


def was_answered(call: VoiceCall) -> bool:
    return call.answered_at is not None or call.queue_result in BRIDGED


def update_status(call: VoiceCall, status: str, duration: int, now: datetime) -> bool:
    """A status callback; never moves backwards. True if it changed the call."""
    if not advances(call.status, status, CALL_RANKS):
        return False
    call.status, call.updated_at = status, now
    if status in CALL_FINAL:
        call.ended_at, call.duration_seconds = now, duration
    return True


def outcome_known(call: VoiceCall) -> bool:
    """Whether a finished call can be judged: one that was queued waits for the queue's own
    result (it may yet say 'bridged')."""
    return call.queue is None or call.queue_result is not None


async def request_callback(
    session: AsyncSession, call: VoiceCall, *, voicemail: bool, waited: int, now: datetime
) -> VoiceCallback | None:
    """Put the call on the call-back list if the policy says so (once per call)."""
    reason = callback_reason(
        CallOutcome(
            has_number=call.phone is not None,
            answered=was_answered(call),
            emergency=call.menu_choice == "emergency",
            voicemail=voicemail,
            waited_seconds=waited,
        )
    )
    if reason is None or call.phone is None:
        return None
    level = priority(reason)
    callback_id = await session.scalar(
        insert(VoiceCallback)
        .values(
            call_id=call.id,
            phone=call.phone,
            phone_index=call.phone_index,
            case_id=call.case_id,
            reason=reason,
            emergency=call.menu_choice == "emergency",
            priority=level,
            due_at=due(reason, now),
            status="pending",
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["call_id"])
        .returning(VoiceCallback.id)
    )
    if callback_id is None:
        return None
    if call.case_id is not None:
        session.add(
            case_event(
                case_id=call.case_id,
                event="callback_requested",
                actor=ACTOR,
                reason=f"{REASON_LABELS[reason]}，请回电",
                data={
                    "call_id": call.id,
                    "callback_id": callback_id,
                    "reason": reason,
                    "priority": level,
                    "recording_sid": call.recording_sid,
                },
                created_at=now,
            )
        )
    return await session.get(VoiceCallback, callback_id)


async def save_voicemail(
    session: AsyncSession,
    call: VoiceCall,
    *,
    recording_sid: str,
    recording_url: str,
    recording_seconds: int,
    ip: str | None,
    now: datetime,
) -> IntakeResult:
    """The voicemail becomes a report (emergency if the caller pressed 1), with the
    recording linked on the call and in the report."""
    emergency = call.menu_choice == "emergency"
    result = await record_report(
        session,
        NewReport(
            channel="voice",
            external_id=f"vm-{call.call_sid}",
            description=text("voice", "voicemail_report", seconds=recording_seconds),
            reporter_phone=call.phone,
            categories=["other"],  # nothing to triage until someone listens
            emergency=emergency,
            in_danger_now=emergency,
            raw={
                "call_sid": call.call_sid,
                "recording_sid": recording_sid,
                "recording_url": recording_url,
                "recording_seconds": recording_seconds,
            },
            actor=ACTOR,
            ip=ip,
        ),
    )
    if call.recording_sid is None:
        call.recording_sid, call.recording_url = recording_sid, recording_url
        call.recording_seconds = recording_seconds
    if call.report_id is None:
        call.report_id, call.case_id = result.report_id, result.case_id
    call.updated_at = now
    return result


async def link_report(
    session: AsyncSession,
    call: VoiceCall,
    *,
    report_id: int | None,
    case_id: int,
    actor: str,
    actor_id: int,
    now: datetime,
) -> None:
    """An operator ties the call to the report registered during it (or to an existing case
    it is about); the case's timeline shows the call."""
    if call.case_id is None:
        call.case_id = case_id
        call.report_id = report_id
    call.updated_at = now
    session.add(
        case_event(
            case_id=case_id,
            event="call_linked",
            actor=actor,
            actor_id=actor_id,
            reason="来电与案件关联",
            data={"call_id": call.id, "report_id": report_id},
            created_at=now,
        )
    )


async def register_report(
    session: AsyncSession, call: VoiceCall, new: NewReport, *, actor_id: int, now: datetime
) -> IntakeResult:
    """A report an operator registers during a call: one per call (CallSid), linked to it.
    The caller's number stands in for the reporter's when the operator gives none."""
    new.channel, new.external_id = "voice", call.call_sid
    new.reporter_phone = new.reporter_phone or call.phone
    result = await record_report(session, new)
    if not result.duplicate:
        await link_report(
            session,
            call,
            report_id=result.report_id,
            case_id=result.case_id,
            actor=new.actor,
            actor_id=actor_id,
            now=now,
        )
    return result
