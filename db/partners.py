"""Tables of the partner forwards (110 / 12345 / 12355): who the partners are, the result
feedback we owe them and every attempt to deliver it, and the callers' satisfaction.

A forwarded work order itself is an ordinary `report` row (channel = the partner's source,
external_id = the partner's order id), so intake, idempotency and routing are shared with
every other channel.
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from db.columns import case_ref, partial_index, report_ref
from db.columns import timestamp as _at

__all__ = ["Partner", "PartnerMessage", "PartnerAttempt", "ForwardSatisfaction"]


class Partner(SQLModel, table=True):
    """A partner system; its shared secret is kept encrypted (never hashed: we must sign)."""

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=10, unique=True)
    name: str = Field(max_length=60)
    secret_box: str  # Fernet token of the shared secret, under a key from HOTLINE_SECRET_KEY
    callback_url: str | None = Field(default=None, max_length=500)
    active: bool = Field(default=True)
    created_at: datetime | None = _at()
    updated_at: datetime | None = _at()


class PartnerMessage(SQLModel, table=True):
    """One status message owed to a partner about one work order: at most one per status.

    Delivered strictly in id order per partner: the head of the line waits out its backoff
    before anything behind it is tried, so the partner sees statuses in the order they
    happened.
    """

    __tablename__ = "partner_message"
    __table_args__ = (
        sa.UniqueConstraint("report_id", "status"),
        partial_index(
            "ix_partner_message_undelivered", "partner_id", "id", where="delivered_at IS NULL"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    partner_id: int = Field(foreign_key="partner.id")
    report_id: int = report_ref()
    case_id: int = case_ref(index=True)
    status: str = Field(max_length=20)  # accepted, handling, closed, returned, merged
    body: dict = Field(sa_column=sa.Column(JSONB, nullable=False))
    created_at: datetime | None = _at()
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = _at()
    delivered_at: datetime | None = _at(nullable=True)
    last_error: str | None = Field(default=None, max_length=60)


class PartnerAttempt(SQLModel, table=True):
    """One try to deliver a message: when, how long, what came back (no body is kept)."""

    __tablename__ = "partner_attempt"

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="partner_message.id", index=True)
    at: datetime | None = _at()
    duration_ms: int
    http_status: int | None = None
    error: str | None = Field(default=None, max_length=60)


class ForwardSatisfaction(SQLModel, table=True):
    """The caller's satisfaction with one work order (回访评价), as the partner reports it."""

    __tablename__ = "forward_satisfaction"

    report_id: int = report_ref(primary_key=True)
    case_id: int = case_ref(index=True)
    source: str = Field(max_length=10)
    score: int = Field(ge=1, le=5)  # 5 非常满意 … 1 非常不满意
    comment: str | None = None
    visited_at: datetime | None = _at(nullable=True)
    recorded_at: datetime | None = _at()
