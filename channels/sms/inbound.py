"""An inbound SMS, stored in the webhook's transaction: a keyword, a new report, or one more
message on the sender's active thread.

Idempotent on MessageSid: a retried webhook finds its message and gets the reply stored with
it. Messages from one number are serialized by an advisory lock on the number, so two
arriving together cannot both open a report. This is the webhook's hot path: after the lock,
one statement finds what is known (the MessageSid, the opt-out, the active thread and its
receipt code) and one statement stores the message with what goes with it; a message on a
thread then has the thread judged again as a whole (its text read, the case raised by the
judgement, the report's judgement replaced: three more statements).
"""

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from channels.sms.optouts import opt_in, opt_out
from db import clock
from db.crypto import EncryptedText, phone_index
from db.models import Case, Report
from db.timeline import insert_events
from workflows.cases import emergency, receipts
from workflows.cases.intake import NewReport, record_report
from workflows.telephony.channel_texts import text as reply_text
from workflows.telephony.sms_keywords import keyword
from workflows.telephony.sms_threading import ENDED_CASE_STATES, active_since
from workflows.triage import Judgement, judge
from workflows.triage.policy import rejudge

ACTOR = "twilio:sms"
MAX_BODY = 5000


@dataclass(frozen=True)
class InboundSms:
    sid: str
    sender: str  # channels.callers.sender_key
    reporter_phone: str | None  # E.164 when the sender is a real number
    body: str
    media: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ActiveThread:
    id: int
    case_id: int
    report_id: int
    receipt_code: str


async def receive(session: AsyncSession, sms: InboundSms, *, ip: str | None) -> str:
    """Store the message (and its report, if it opens one); returns the reply ('' for none)."""
    index = phone_index(sms.sender)  # numbers are ciphertext: looked up by their index
    lock_key = func.hashtextextended(f"sms-from:{index}", 0)
    await session.execute(select(func.pg_advisory_xact_lock(lock_key)))
    now = clock.now()
    known = (
        await session.execute(
            _LOOKUP, {"sid": sms.sid, "phone_index": index, "since": active_since(now)}
        )
    ).one()
    if known.seen:
        return known.earlier_reply or ""
    thread = (
        ActiveThread(known.thread_id, known.case_id, known.report_id, known.receipt_code)
        if known.thread_id is not None
        else None
    )

    word = keyword(sms.body)
    if word is None and not sms.body.strip() and not sms.media:
        word = "help"  # an empty message: tell them how to use the line
    if word is not None:
        return await _keyword(session, sms, word, thread, known.opted_out, now)
    if thread is None:
        judgement = judge(sms.body, channel="sms")
        return await _open_report(session, sms, judgement, known.opted_out, now, ip)
    reply = "" if known.opted_out else _reply("followup", thread.receipt_code)
    message_id = await _store(
        session,
        sms,
        "followup",
        thread,
        reply,
        now,
        event=("sms_received", "收到举报人的补充短信"),
    )
    await _judge_thread(session, thread, message_id, now)
    return reply


async def _judge_thread(
    session: AsyncSession, thread: ActiveThread, message_id: int, now: datetime
) -> None:
    """The thread as a whole, judged again with its new message: the report keeps the
    latest judgement, the case is raised by it (categories added, a place if it had none,
    a non-case becomes a case, danger makes it an emergency), never lowered."""
    bodies = (await session.execute(_THREAD_TEXT, {"thread_id": thread.id})).scalars()
    judgement = judge("\n".join(b for b in bodies if b and b.strip()), channel="sms")
    case = await session.get(Case, thread.case_id, with_for_update=True)
    if case is None:
        return
    after = rejudge(
        judgement,
        categories=list(case.categories or []),
        jurisdiction=case.jurisdiction_code,
        not_a_case=case.not_a_case,
        predicted_risk=case.predicted_risk,
        emergency=case.emergency,
    )
    case.categories, case.jurisdiction_code = after.categories, after.jurisdiction
    case.not_a_case, case.predicted_risk = after.not_a_case, after.predicted_risk
    await session.execute(
        update(Report)
        .where(Report.id == thread.report_id)
        .values(judgement=judgement.to_dict())
    )
    if after.emergency:
        matched = judgement.evidence.get("emergency", [])
        await raise_emergency(session, thread, message_id, matched, now)


def _reply(template: str, code: str) -> str:
    return reply_text("sms", template, code=receipts.display(code))


async def _keyword(
    session: AsyncSession,
    sms: InboundSms,
    word: str,
    thread: ActiveThread | None,
    opted_out: bool,
    now: datetime,
) -> str:
    event = None
    if word == "stop":
        await opt_out(session, sms.sender, sms.body.strip(), now)
        reply = "" if opted_out else reply_text("sms", "stop")
        if not opted_out:
            event = ("sms_opted_out", "举报人回复退订，不再向其发送短信")
    elif word == "start":
        await opt_in(session, sms.sender)
        reply = reply_text("sms", "start")
    else:
        reply = reply_text("sms", "help")
    await _store(session, sms, word, thread, reply, now, event=event, touch=False)
    return reply


def _description(sms: InboundSms) -> str:
    if sms.body.strip():
        return sms.body[:MAX_BODY]
    return f"（彩信，{len(sms.media)}个附件，无文字）"


async def _open_report(
    session: AsyncSession,
    sms: InboundSms,
    judgement: Judgement,
    opted_out: bool,
    now: datetime,
    ip: str | None,
) -> str:
    raw: dict = {"message_sid": sms.sid}
    if sms.media:
        raw["media"] = sms.media
    result = await record_report(
        session,
        NewReport(
            channel="sms",
            external_id=sms.sid,
            description=_description(sms),
            reporter_phone=sms.reporter_phone,
            # The message is the reporter's own words: its danger is what they said.
            emergency=judgement.emergency,
            in_danger_now=judgement.emergency,
            raw=raw,
            actor=ACTOR,
            ip=ip,
            judgement=judgement,
        ),
    )
    template = "receipt_emergency" if judgement.emergency else "receipt"
    reply = "" if opted_out else _reply(template, result.receipt_code)
    await session.execute(
        _OPEN_THREAD,
        {
            **_message_values(sms, "report", reply, now),
            "report_id": result.report_id,
            "case_id": result.case_id,
        },
    )
    return reply


def _message_values(sms: InboundSms, kind: str, reply: str, now: datetime) -> dict:
    return {
        "kind": kind,
        "phone": sms.sender,
        "phone_index": phone_index(sms.sender),
        "sid": sms.sid,
        "body": sms.body,
        "media": json.dumps(sms.media) if sms.media else None,
        "reply": reply or None,
        "now": now,
    }


async def _store(
    session: AsyncSession,
    sms: InboundSms,
    kind: str,
    thread: ActiveThread | None,
    reply: str,
    now: datetime,
    *,
    event: tuple[str, str] | None = None,
    touch: bool = True,
) -> int:
    """The message; on a thread, `touch` moves its last activity and `event` goes on the
    case's timeline (never with the text: the timeline is shown to departments)."""
    values = {
        **_message_values(sms, kind, reply, now),
        "thread_id": thread.id if thread else None,
        "case_id": thread.case_id if thread else None,
        "touch": touch and thread is not None,
        "event": event[0] if event and thread else None,
        "reason": event[1] if event and thread else None,
        "actor": ACTOR,
    }
    return (await session.execute(_STORE_MESSAGE, values)).scalar_one()


async def raise_emergency(
    session: AsyncSession,
    thread: ActiveThread,
    message_id: int,
    matched: list[str],
    now: datetime,
) -> bool:
    """A later message speaks of imminent danger: the case becomes an emergency."""
    return await emergency.raise_emergency(
        session,
        thread.case_id,
        thread.report_id,
        actor=ACTOR,
        reason="补充短信提到儿童正面临危险",
        data={"thread_id": thread.id, "message_id": message_id, "matched": matched},
        now=now,
    )


_ENDED = ", ".join(f"'{state}'" for state in ENDED_CASE_STATES)

# What is known about a message before storing it: was it seen (a retry), has the sender
# opted out, and the sender's active thread (workflows.telephony.sms_threading) with its
# receipt code.
_LOOKUP = text(
    f"""
    SELECT m.id IS NOT NULL AS seen, m.reply AS earlier_reply,
           EXISTS (SELECT 1 FROM sms_opt_out o WHERE o.phone_index = :phone_index) AS opted_out,
           t.id AS thread_id, t.case_id, t.report_id, r.receipt_code
    FROM (SELECT 1) AS one
    LEFT JOIN sms_message m ON m.message_sid = :sid
    LEFT JOIN LATERAL (
        SELECT t.id, t.case_id, t.report_id
        FROM sms_thread t JOIN hcase c ON c.id = t.case_id
        WHERE t.phone_index = :phone_index AND t.last_message_at > :since
          AND c.state NOT IN ({_ENDED})
        ORDER BY t.last_message_at DESC
        LIMIT 1
    ) t ON true
    LEFT JOIN report r ON r.id = t.report_id
    """
)

# The reporter's messages on a thread, in order: the text its judgement reads.
_THREAD_TEXT = text(
    "SELECT body FROM sms_message WHERE thread_id = :thread_id AND direction = 'in'"
    " AND kind IN ('report', 'followup') ORDER BY id"
).columns(body=EncryptedText)  # bodies are ciphertext at rest (db.crypto)

_MESSAGE_COLUMNS = (
    "thread_id, direction, kind, phone, phone_index, message_sid, body, media, reply, status,"
    " attempts, created_at, updated_at"
)
_MESSAGE_VALUES = (
    "'in', :kind, :phone, :phone_index, :sid, :body, CAST(:media AS jsonb), :reply, 'received',"
    " 0, :now, :now"
)
# The number and the text are ciphertext at rest (db.crypto), bound as such.
_SEALED = (bindparam("body", type_=EncryptedText), bindparam("phone", type_=EncryptedText))

# A first message: its thread and the message, in one statement.
_OPEN_THREAD = text(
    f"""
    WITH t AS (
        INSERT INTO sms_thread (phone, phone_index, report_id, case_id, opened_at,
                                last_message_at)
        VALUES (:phone, :phone_index, :report_id, :case_id, :now, :now)
        RETURNING id
    )
    INSERT INTO sms_message ({_MESSAGE_COLUMNS})
    SELECT t.id, {_MESSAGE_VALUES} FROM t
    """
).bindparams(*_SEALED)

# A message's timeline event, when it has one (:event NULL: none).
_MESSAGE_EVENT = insert_events(
    ("case_id", "event", "actor", "reason", "data", "created_at"),
    """SELECT CAST(:case_id AS bigint), CAST(:event AS text), :actor, :reason,
               jsonb_build_object('thread_id', CAST(:thread_id AS integer), 'message_id', m.id),
               :now
        FROM m
        WHERE CAST(:event AS text) IS NOT NULL""",
)

# Any other message: the message, the thread's last activity, the timeline event.
_STORE_MESSAGE = text(
    f"""
    WITH m AS (
        INSERT INTO sms_message ({_MESSAGE_COLUMNS})
        VALUES (CAST(:thread_id AS integer), {_MESSAGE_VALUES})
        RETURNING id
    ), t AS (
        UPDATE sms_thread SET last_message_at = :now
        WHERE id = CAST(:thread_id AS integer) AND CAST(:touch AS boolean)
    ), e AS (
        {_MESSAGE_EVENT}
    )
    SELECT id FROM m
    """
).bindparams(*_SEALED)
