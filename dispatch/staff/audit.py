"""Audit rows for reads and writes of cases: who, what, when, from where."""

from datetime import datetime
from typing import Any, TypeVar

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from channels.web import client_ip
from db.models import AuditLog
from db.timeline import case_event
from dispatch.staff.auth import Principal

R = TypeVar("R")


def audit(
    session: AsyncSession,
    principal: Principal,
    action: str,
    object_type: str,
    object_id: Any,
    request: Request | None = None,
    detail: dict[str, Any] | None = None,
    *,
    ip: str | None = None,
) -> None:
    """Add the row to the caller's transaction, so it commits (or not) with the change.

    Services know no request: they pass the client's address as `ip`."""
    session.add(
        AuditLog(
            actor_id=principal.id,
            actor=principal.label,
            action=action,
            object_type=object_type,
            object_id=None if object_id is None else str(object_id),
            ip=client_ip(request) if request else ip,
            detail=detail,
        )
    )


def add_timeline_event(
    session: AsyncSession, actor: str, case_id: int, event: str, /, **fields: Any
) -> None:
    """Add to the caller's transaction a timeline event by `actor` (a label: a part of the
    system, `system:deadlines`), the rest (`reason`, `data`, `created_at`…) as `case_event`
    takes them."""
    session.add(case_event(case_id=case_id, event=event, actor=actor, **fields))


def add_case_event(
    session: AsyncSession, principal: Principal, case_id: int, event: str, /, **fields: Any
) -> None:
    """Add to the caller's transaction a timeline event `principal` made: their label and id
    as its actor, the rest as `add_timeline_event` takes them."""
    add_timeline_event(session, principal.label, case_id, event, actor_id=principal.id, **fields)


async def add_with_event(
    session: AsyncSession,
    principal: Principal,
    row: R,
    event: str,
    /,
    *,
    id_as: str,
    reason: str,
    created_at: datetime,
    **data: Any,
) -> R:
    """Add a case's new record (`row`, which has `case_id`) to the caller's transaction and
    the timeline event `principal` made with it: the row's id as `id_as` heads its `data`."""
    session.add(row)
    await session.flush()
    add_case_event(
        session, principal, row.case_id, event,
        reason=reason, data={id_as: row.id, **data}, created_at=created_at,
    )
    return row


def shown_cases(case_ids: list[int]) -> dict[str, Any]:
    """Audit detail of a list read: which cases were on screen (ids only, no content)."""
    unique = list(dict.fromkeys(case_ids))
    return {"count": len(unique), "cases": unique[:200]}
