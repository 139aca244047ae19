"""Tables of the Twilio channels: SMS threads and messages, opt-outs, calls, call-backs and
caller blocks.

Phone numbers are E.164 (or, for a sender phonenumbers cannot parse, the raw sender id),
kept here and in `report` only, as ciphertext at rest; every lookup by number (threading,
opt-outs, blocks, the caller profile) compares the `phone_index` beside it (db.crypto), and
lists and logs show numbers masked. Timestamps are set by the
application's clock, so windows and expiries can be tested without sleeping.
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from db.columns import case_ref, partial_index, report_ref
from db.columns import phone_index as _index
from db.columns import sealed_phone as _phone
from db.columns import timestamp as _at
from db.crypto import EncryptedText, indexed, phone_index

_PHONE = {"phone_index": lambda row: phone_index(row.phone)}

__all__ = ["CallerBlock", "SmsMessage", "SmsOptOut", "SmsThread", "VoiceCall", "VoiceCallback"]


@indexed(**_PHONE)
class SmsThread(SQLModel, table=True):
    """One texter's conversation about one report: the report an SMS opened, and every later
    message from that number while the thread stays active."""

    __tablename__ = "sms_thread"
    __table_args__ = (sa.Index("ix_sms_thread_phone_last", "phone_index", "last_message_at"),)

    id: int | None = Field(default=None, primary_key=True)
    phone: str = _phone(nullable=False)
    phone_index: str | None = _index()
    report_id: int = report_ref(unique=True)
    case_id: int = case_ref(index=True)
    opened_at: datetime | None = _at()
    last_message_at: datetime | None = _at()


@indexed(**_PHONE)
class SmsMessage(SQLModel, table=True):
    """An SMS in or out. Inbound rows keep the reply we gave, so a retried webhook gets the
    same answer; outbound rows carry their delivery status."""

    __tablename__ = "sms_message"

    id: int | None = Field(default=None, primary_key=True)
    thread_id: int | None = Field(default=None, foreign_key="sms_thread.id", index=True)
    direction: str = Field(max_length=3)  # in, out
    # in: report, followup, stop, start, help; out: reply
    kind: str = Field(max_length=20)
    phone: str = _phone(nullable=False)
    phone_index: str | None = _index()
    message_sid: str | None = Field(default=None, max_length=64, unique=True)
    # What the reporter wrote (or we sent): ciphertext at rest, an empty body stays empty.
    body: str = Field(sa_column=sa.Column(EncryptedText, nullable=False))
    media: list | None = Field(default=None, sa_column=sa.Column(JSONB, nullable=True))
    reply: str | None = None
    status: str = Field(max_length=20)  # see workflows.telephony.delivery_status
    error: str | None = Field(default=None, max_length=80)
    attempts: int = Field(default=0)
    author_id: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime | None = _at()
    updated_at: datetime | None = _at()
    submitted_at: datetime | None = _at(nullable=True)


@indexed(**_PHONE)
class SmsOptOut(SQLModel, table=True):
    """A number that sent 退订/STOP: nothing more is sent to it until it sends 开始/START.
    Keyed by the number's blind index (the number itself is ciphertext)."""

    __tablename__ = "sms_opt_out"

    phone_index: str = Field(primary_key=True, max_length=64)
    phone: str = _phone(nullable=False)
    keyword: str = Field(max_length=20)
    opted_out_at: datetime | None = _at()


@indexed(**_PHONE)
class VoiceCall(SQLModel, table=True):
    """One inbound call, from the greeting to its final status."""

    __tablename__ = "voice_call"
    __table_args__ = (
        # Who is waiting now, per queue: the operators' console reads this on every refresh.
        partial_index(
            "ix_voice_call_waiting",
            "queue",
            "enqueued_at",
            where="queue IS NOT NULL AND queue_left_at IS NULL AND answered_at IS NULL"
            " AND ended_at IS NULL",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    call_sid: str = Field(max_length=64, unique=True)
    phone: str | None = _phone()
    phone_index: str | None = _index(index=True)
    status: str = Field(max_length=20)
    route: str = Field(max_length=10)  # open, closed, blocked: decided once, at the greeting
    menu_choice: str | None = Field(default=None, max_length=10)  # emergency, normal
    queue: str | None = Field(default=None, max_length=64)
    enqueued_at: datetime | None = _at(nullable=True)
    queue_left_at: datetime | None = _at(nullable=True)
    queue_result: str | None = Field(default=None, max_length=30)
    queue_seconds: int | None = None
    answered_at: datetime | None = _at(nullable=True)
    duration_seconds: int | None = None
    ended_at: datetime | None = _at(nullable=True)
    recording_sid: str | None = Field(default=None, max_length=64)
    # Where the voicemail is kept (anyone with the link and Twilio's key hears it): sealed.
    recording_url: str | None = Field(default=None, sa_column=sa.Column(EncryptedText))
    recording_seconds: int | None = None
    # When the retention job deleted the audio at Twilio (the sid stays as the record).
    recording_deleted_at: datetime | None = _at(nullable=True)
    report_id: int | None = report_ref(default=None)
    case_id: int | None = case_ref(default=None, index=True)
    created_at: datetime | None = _at()
    updated_at: datetime | None = _at()


@indexed(**_PHONE)
class VoiceCallback(SQLModel, table=True):
    """A call operators owe: a voicemail, a missed emergency call, a caller who gave up."""

    __tablename__ = "voice_callback"
    __table_args__ = (
        partial_index("ix_voice_callback_pending", "due_at", where="status = 'pending'"),
    )

    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(foreign_key="voice_call.id", unique=True)
    phone: str = _phone(nullable=False)
    phone_index: str | None = _index()
    case_id: int | None = case_ref(default=None)
    reason: str = Field(max_length=20)  # voicemail, missed_emergency, abandoned
    emergency: bool = Field(default=False)  # the caller pressed the emergency key
    priority: str = Field(max_length=10)  # a risk level: its claim window sets due_at
    due_at: datetime | None = _at()
    status: str = Field(default="pending", max_length=10)  # pending, done
    attempts: int = Field(default=0)
    outcome: str | None = Field(default=None, max_length=20)
    note: str | None = None
    done_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime | None = _at()
    updated_at: datetime | None = _at()
    done_at: datetime | None = _at(nullable=True)


@indexed(**_PHONE)
class CallerBlock(SQLModel, table=True):
    """A supervisor's time-limited block of an abusive number (the hotline only)."""

    __tablename__ = "caller_block"

    id: int | None = Field(default=None, primary_key=True)
    phone: str = _phone(nullable=False)
    phone_index: str | None = _index(index=True)
    reason: str
    created_by: int = Field(foreign_key="app_user.id")
    created_at: datetime | None = _at()
    expires_at: datetime | None = _at()
    lifted_at: datetime | None = _at(nullable=True)
    lifted_by: int | None = Field(default=None, foreign_key="app_user.id")
