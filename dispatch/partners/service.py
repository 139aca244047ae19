"""The partner loop as staff see it: each partner's feedback line (what is owed, what is
stuck and why), every delivery attempt, a retry by hand, and the forwards' figures
including the callers' satisfaction (回访). The JSON API and the console both call these."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import ColumnElement, RowMapping, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from channels.partners.callbacks import wake
from db import clock
from db.models import Case
from db.partners import Partner, PartnerAttempt, PartnerMessage
from dispatch.common.lookup import row_or_404, scalar_or_404
from dispatch.staff.audit import audit, shown_cases
from dispatch.staff.auth import Principal
from dispatch.staff.scope import case_filter
from workflows.errors import Conflict, Invalid
from workflows.partners.forwards import (
    feedback_statuses,
    satisfaction_labels,
    satisfied_from,
    source_name,
    sources,
)

CHINA = ZoneInfo("Asia/Shanghai")
FIRST, LAST = date(2000, 1, 1), date(2099, 12, 31)  # periods a statistic may ask about


class PartnerLine(BaseModel):
    source: str
    name: str
    callback_url: str | None
    active: bool
    undelivered: int
    oldest_undelivered_at: datetime | None
    head_attempts: int | None
    head_next_attempt_at: datetime | None
    head_last_error: str | None
    delivered: int


class PartnerLines(BaseModel):
    items: list[PartnerLine]


class MessageRow(BaseModel):
    id: int
    source: str
    external_id: str
    case_id: int
    status: str
    status_label: str
    created_at: datetime
    attempts: int
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None


class MessageList(BaseModel):
    items: list[MessageRow]


class AttemptRow(BaseModel):
    at: datetime
    duration_ms: int
    http_status: int | None
    error: str | None


class MessageDetail(MessageRow):
    message: str
    attempt_log: list[AttemptRow]


class SourceFigures(BaseModel):
    source: str
    name: str
    orders: int
    updates: int
    returned: int
    closed: int
    feedback_delivered: int
    feedback_undelivered: int
    satisfaction: dict[str, int]
    satisfaction_count: int
    satisfaction_rate: float | None


class ForwardStats(BaseModel):
    since: date
    until: date
    items: list[SourceFigures]


async def partner_lines(*, session: AsyncSession) -> PartnerLines:
    """Each partner's feedback line: how much waits, and why the first in line waits."""
    rows = await line_rows(session)
    return PartnerLines(items=[PartnerLine(**row, name=source_name(row["source"])) for row in rows])


async def line_rows(session: AsyncSession) -> list[RowMapping]:
    """Each partner's line (waiting, delivered, the head's state): for the console's
    partner page and for `/metrics`."""
    return list((await session.execute(_LINES)).mappings().all())


_LINES = text(
    """
    SELECT p.source, p.callback_url, p.active,
           (SELECT count(*) FROM partner_message m
             WHERE m.partner_id = p.id AND m.delivered_at IS NULL) AS undelivered,
           (SELECT count(*) FROM partner_message m
             WHERE m.partner_id = p.id AND m.delivered_at IS NOT NULL) AS delivered,
           h.created_at AS oldest_undelivered_at, h.attempts AS head_attempts,
           h.next_attempt_at AS head_next_attempt_at, h.last_error AS head_last_error
    FROM partner p
    LEFT JOIN LATERAL (
        SELECT m.created_at, m.attempts, m.next_attempt_at, m.last_error
        FROM partner_message m
        WHERE m.partner_id = p.id AND m.delivered_at IS NULL
        ORDER BY m.id LIMIT 1
    ) h ON true
    ORDER BY p.source
    """
)


def _row(message: PartnerMessage, source: str) -> dict:
    labels = {status: spec.label for status, spec in feedback_statuses().items()}
    return {
        "id": message.id,
        "source": source,
        "external_id": message.body.get("external_id", ""),
        "case_id": message.case_id,
        "status": message.status,
        "status_label": labels.get(message.status, message.status),
        "created_at": message.created_at,
        "attempts": message.attempts,
        "next_attempt_at": None if message.delivered_at else message.next_attempt_at,
        "delivered_at": message.delivered_at,
        "last_error": message.last_error,
    }


def _in_scope(principal: Principal) -> ColumnElement[bool]:
    """A status message is its case's news (the close reason, a return's why): seen, and
    retried, only by whoever may see the case."""
    return PartnerMessage.case_id.in_(select(Case.id).where(case_filter(principal)))


Source = Literal["110", "12345", "12355"]
DeliveryState = Literal["undelivered", "delivered", "all"]


async def partner_messages(
    *,
    session: AsyncSession,
    principal: Principal,
    ip: str | None,
    source: Source | None = None,
    state: DeliveryState = "all",
    case_id: int | None = None,
    limit: int = 100,
) -> MessageList:
    """Status messages, newest first, with their delivery state."""
    stmt = (
        select(PartnerMessage, Partner.source)
        .join(Partner, Partner.id == PartnerMessage.partner_id)
        .where(_in_scope(principal))
        .order_by(PartnerMessage.id.desc())
        .limit(limit)
    )
    if source:
        if source not in sources():
            raise Invalid("unknown_source", f"未知的来源，可选：{'、'.join(sources())}")
        stmt = stmt.where(Partner.source == source)
    if state == "undelivered":
        stmt = stmt.where(PartnerMessage.delivered_at.is_(None))
    elif state == "delivered":
        stmt = stmt.where(PartnerMessage.delivered_at.is_not(None))
    if case_id:
        stmt = stmt.where(PartnerMessage.case_id == case_id)
    rows = (await session.execute(stmt)).all()
    audit(session, principal, "partner.messages.list", "case", None,
          detail=shown_cases([m.case_id for m, _ in rows]), ip=ip)
    return MessageList(items=[MessageRow(**_row(m, s)) for m, s in rows])


async def partner_message(
    *, session: AsyncSession, principal: Principal, ip: str | None, message_id: int
) -> MessageDetail:
    """One message with every attempt to deliver it; 404 outside the case's scope."""
    stmt = (
        select(PartnerMessage, Partner.source)
        .join(Partner, Partner.id == PartnerMessage.partner_id)
        .where(PartnerMessage.id == message_id, _in_scope(principal))
    )
    found = await row_or_404(session, stmt, "message_not_found", "未找到该反馈消息")
    attempts = (
        await session.execute(
            select(PartnerAttempt)
            .where(PartnerAttempt.message_id == message_id)
            .order_by(PartnerAttempt.id)
        )
    ).scalars()
    log = [
        AttemptRow(at=a.at, duration_ms=a.duration_ms, http_status=a.http_status, error=a.error)
        for a in attempts
    ]
    audit(session, principal, "partner.message.read", "case", found[0].case_id,
          detail={"message_id": message_id}, ip=ip)
    message, source = found
    return MessageDetail(
        **_row(message, source), message=message.body.get("message", ""), attempt_log=log
    )


async def retry_message(
    *, session: AsyncSession, principal: Principal, ip: str | None, message_id: int
) -> dict[str, bool]:
    """Try the partner's line again now, without waiting out the backoff (after the partner
    says it is back, say). Order is kept: the line restarts from its head."""
    stmt = select(PartnerMessage).where(PartnerMessage.id == message_id, _in_scope(principal))
    message = await scalar_or_404(session, stmt, "message_not_found", "未找到该反馈消息")
    if message.delivered_at is not None:
        raise Conflict("already_delivered", "该消息已送达，无需重试")
    await session.execute(
        update(PartnerMessage)
        .where(
            PartnerMessage.partner_id == message.partner_id,
            PartnerMessage.delivered_at.is_(None),
        )
        .values(next_attempt_at=func.now())
    )
    await wake(session, message.partner_id)
    audit(session, principal, "partner.retry", "partner_message", message_id, ip=ip)
    return {"queued": True}


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=CHINA).astimezone(UTC)


async def forward_stats(
    *, session: AsyncSession, since: date | None = None, until: date | None = None
) -> ForwardStats:
    """Per source over a period (China dates, by the day the order arrived): orders,
    updates, 退回, 办结, feedback delivery, and the 回访 satisfaction with its rate."""
    today = clock.now().astimezone(CHINA).date()
    until = until or today
    since = since or until - timedelta(days=89)
    if since > until or (until - since).days > 3660:
        raise Invalid("invalid_period", "统计区间无效")
    params = {"start": _day_start(since), "end": _day_start(until + timedelta(days=1))}
    rows = {r["source"]: r for r in (await session.execute(_STATS, params)).mappings()}
    scores = (await session.execute(_SCORES, params)).all()
    labels = satisfaction_labels()
    items = []
    for source in sources():
        row = rows.get(source, {})
        counts = {label: 0 for label in reversed(labels)}
        for s, score, n in scores:
            if s == source:
                counts[labels[score - 1]] += n
        total = sum(counts.values())
        good = sum(n for s, score, n in scores if s == source and score >= satisfied_from())
        items.append(
            SourceFigures(
                source=source,
                name=source_name(source),
                orders=row.get("orders", 0),
                updates=row.get("updates", 0),
                returned=row.get("returned", 0),
                closed=row.get("closed", 0),
                feedback_delivered=row.get("delivered", 0),
                feedback_undelivered=row.get("undelivered", 0),
                satisfaction=counts,
                satisfaction_count=total,
                satisfaction_rate=round(good / total, 4) if total else None,
            )
        )
    return ForwardStats(since=since, until=until, items=items)


_STATS = text(
    """
    WITH orders AS (
        SELECT r.id, r.channel AS source, r.case_id,
               NOT EXISTS (SELECT 1 FROM report e WHERE e.case_id = r.case_id
                           AND e.channel = r.channel AND e.id < r.id) AS root
        FROM report r
        WHERE r.channel IN ('110', '12345', '12355')
          AND r.created_at >= :start AND r.created_at < :end
    )
    SELECT o.source,
           count(*) FILTER (WHERE o.root) AS orders,
           count(*) FILTER (WHERE NOT o.root) AS updates,
           count(*) FILTER (WHERE o.root AND c.state = 'invalid') AS returned,
           count(*) FILTER (WHERE o.root AND c.state = 'closed') AS closed,
           (SELECT count(*) FROM partner_message m JOIN orders x ON x.id = m.report_id
             WHERE x.source = o.source AND m.delivered_at IS NOT NULL) AS delivered,
           (SELECT count(*) FROM partner_message m JOIN orders x ON x.id = m.report_id
             WHERE x.source = o.source AND m.delivered_at IS NULL) AS undelivered
    FROM orders o JOIN hcase c ON c.id = o.case_id
    GROUP BY o.source
    """
)
_SCORES = text(
    """
    SELECT s.source, s.score, count(*) FROM forward_satisfaction s
    JOIN report r ON r.id = s.report_id
    WHERE r.created_at >= :start AND r.created_at < :end
    GROUP BY s.source, s.score
    """
)
