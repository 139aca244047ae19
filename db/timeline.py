"""A case's timeline: the one writer of its entries, whoever writes them. ORM code adds
`case_event(...)`; the hot paths that write a whole operation in one statement (intake in
`db.intake_repository`, routing in `db.referrals_repository`, the SMS webhook, a referral
claim, the retention job) take their `INSERT` from `insert_events`, so the table and its
columns are named here only.

An entry says who did what to a case, when and why; `data` holds ids and codes only, never
what a person typed, so the timeline can be shown to everyone who may see the case; a
department's staff read the case's own entries and their own share's only (which entries:
`dispatch.staff.scope.case_event_filter`).
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, overload

from sqlalchemy import Insert, Select, insert

from db.models import CaseEvent

_COLUMNS = frozenset(CaseEvent.__table__.c.keys())


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


@overload
def insert_events(columns: Sequence[str], rows: str) -> str: ...
@overload
def insert_events(columns: Sequence[str], rows: Select) -> Insert: ...
def insert_events(columns: Sequence[str], rows: str | Select) -> str | Insert:
    """Timeline entries inserted from `rows` (a SELECT giving `columns`, in that order),
    as one part of the caller's single statement (a CTE of it, or all of it): SQL text for
    statements written in SQL, a Core `insert` for those built with SQLAlchemy. A column
    the table has not fails here, when the statement is built (the SQL ones: as their
    module loads), not in the database at the first request."""
    unknown = [name for name in columns if name not in _COLUMNS]
    if unknown:
        raise ValueError(f"case_event has no column {', '.join(unknown)}")
    if isinstance(rows, str):
        return f"INSERT INTO case_event ({', '.join(columns)}) {rows}"
    return insert(CaseEvent.__table__).from_select(list(columns), rows)
