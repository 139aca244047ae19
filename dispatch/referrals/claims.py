"""Claiming a referral, lean: a race of a hundred liaisons must answer all of them fast.

A claim is one read and one write statement on one pooled connection, no ORM:

1. read the referral (in the caller's scope) with what its deadlines depend on: its status,
   its creation time and its case's risk fields. Not there → 404; not queued → 409, done.
2. one statement, atomic on its own (autocommit): `UPDATE … WHERE id = (SELECT … FOR UPDATE
   SKIP LOCKED)` guarded by what step 1 read, which also writes the case event and the audit
   row in CTEs, and answers the id won (or none) beside the referral as it saw it; only the
   winner reads its row back. While one claimant holds the row the others skip it and get
   409 at once, exactly as before; the deadlines of the claimed phase are computed in Python
   (working-day calendar) from step 1's values, and the guard makes sure they still apply.

If the guard fails while the row is still queued (re-routed or re-assessed in between),
the claim is tried again with fresh values.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from db.models import AuditLog, Case, Referral
from db.timeline import insert_events
from dispatch.referrals.deadlines import effective_risk, enter_phase
from workflows.errors import Conflict, NotFound

_R = Referral.__table__
_C = Case.__table__
_ATTEMPTS = 3


@dataclass(frozen=True)
class Claimant:
    """Who claims, as the timeline and the audit log name them."""

    user_id: int
    label: str
    ip: str | None


def _fingerprint(referral_id: int, visible: ColumnElement[bool]):
    return (
        select(
            _R.c.status,
            _R.c.case_id,
            _R.c.created_at,
            _C.c.risk_level,
            _C.c.emergency,
            _C.c.mandatory,
        )
        .select_from(_R.join(_C, _C.c.id == _R.c.case_id))
        .where(_R.c.id == referral_id, visible)
    )


def _deadlines(row: Any, now: datetime) -> dict[str, Any]:
    """The claimed phase's deadlines and next check, by the same rules as every transition."""
    case = Case(risk_level=row.risk_level, emergency=row.emergency, mandatory=row.mandatory)
    probe = Referral(
        case_id=row.case_id,
        department_code="",
        role="",
        status="claimed",
        created_at=row.created_at,
        claimed_at=now,
        last_activity_at=now,
    )
    enter_phase(probe, effective_risk(case))
    return {
        "escalation": probe.escalation,
        "claim_due_at": probe.claim_due_at,
        "action_due_at": probe.action_due_at,
        "next_check_at": probe.next_check_at,
    }


def _claim_statement(referral_id: int, visible, row: Any, who: Claimant, now: datetime):
    unchanged = (
        select(_C.c.id)
        .where(
            _C.c.id == _R.c.case_id,
            _C.c.risk_level.is_not_distinct_from(row.risk_level),
            _C.c.emergency == row.emergency,
            _C.c.mandatory == row.mandatory,
        )
        .exists()
    )
    target = (
        select(_R.c.id)
        .where(
            _R.c.id == referral_id,
            _R.c.status == "queued",
            _R.c.created_at == row.created_at,
            visible,
        )
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    won = (
        update(_R)
        .where(_R.c.id == target, unchanged)
        .values(
            status="claimed",
            claimed_by=who.user_id,
            claimed_at=now,
            last_activity_at=now,
            updated_at=now,
            **_deadlines(row, now),
        )
        .returning(*_R.c)
        .cte("won")
    )
    event = insert_events(
        ("case_id", "event", "actor", "actor_id", "data", "created_at"),
        select(
            won.c.case_id,
            literal("referral_claimed"),
            literal(who.label),
            literal(who.user_id),
            _event_data(won),
            literal(now),
        ),
    )
    audit = insert(AuditLog.__table__).from_select(
        ["actor_id", "actor", "action", "object_type", "object_id", "ip"],
        select(
            literal(who.user_id),
            literal(who.label),
            literal("referral.claim"),
            literal("referral"),
            won.c.id.cast(AuditLog.__table__.c.object_id.type),
            literal(who.ip, AuditLog.__table__.c.ip.type),
        ),
    )
    event_cte = event.cte("event")
    audit_cte = audit.cte("audit")
    # One row back whoever wins: the id claimed (or NULL), and the referral as this
    # statement's snapshot saw it, so a loser needs no second read to know why it lost.
    won_id = select(won.c.id).scalar_subquery().label("won_id")
    return _fingerprint(referral_id, visible).add_columns(won_id).add_cte(won, event_cte, audit_cte)


def _event_data(won) -> ColumnElement:
    return func.jsonb_build_object(
        "referral_id", won.c.id, "department", won.c.department_code, type_=JSONB
    )


async def claim(
    engine: AsyncEngine,
    referral_id: int,
    who: Claimant,
    visible: ColumnElement[bool],
    now: datetime,
) -> Referral:
    """Exactly one winner; everyone else 409 (404 outside the caller's scope)."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for _ in range(_ATTEMPTS):
            row = (await conn.execute(_fingerprint(referral_id, visible))).first()
            if row is None:
                raise NotFound("referral_not_found", "未找到该转介")
            if row.status != "queued":
                break
            stmt = _claim_statement(referral_id, visible, row, who, now)
            seen = (await conn.execute(stmt)).first()
            if seen is not None and seen.won_id is not None:
                claimed = (await conn.execute(select(_R).where(_R.c.id == seen.won_id))).one()
                return Referral(**claimed._mapping)
            if seen is None or seen.status != "queued" or tuple(seen)[:-1] == tuple(row):
                # Taken (or being taken: the row was locked) by someone else.
                row = seen
                break
            # Re-routed or re-assessed since the read: its deadlines differ, try again.
        status = row.status if row is not None else "claimed"
    raise Conflict(
        "already_claimed" if status != "unrouted" else "not_routed",
        "该转介已被认领或不在待认领状态",
    )
