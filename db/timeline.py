"""A case's timeline: the one writer of its entries (`case_event`), whoever writes them,
and the statements the hot paths' one-statement inserts use (`db.intake_repository`, the
SMS webhook) name the same table and columns.

An entry says who did what to a case, when and why; `data` holds ids and codes only, never
what a person typed, so the timeline can be shown to everyone who may see the case; a
department's staff read the case's own entries and their own share's only (which entries:
`dispatch.staff.scope.case_event_filter`).
"""

from datetime import datetime
from typing import Any

from db.models import CaseEvent


def case_event(
    *,
    case_id: int,
    event: str,
    actor: str,
    actor_id: int | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
    created_at: datetime | None = None,
) -> CaseEvent:
    """One timeline entry, for the caller to add to its transaction with the change it
    records (the audit and outbox rows of the same operation go in the same one)."""
    given = {
        "actor_id": actor_id,
        "from_state": from_state,
        "to_state": to_state,
        "reason": reason,
        "data": data,
        "created_at": created_at,  # unset: the database's clock (server default)
    }
    given = {name: value for name, value in given.items() if value is not None}
    return CaseEvent(case_id=case_id, event=event, actor=actor, **given)
