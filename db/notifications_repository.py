"""The notification job's statements (`notify.send`): the notifications still to send,
locked, with their users' phones, in one read; and what became of each (sent, logged,
failed) in one write, inside the same transaction.

Through the ORM the job cost five round trips per notification (BEGIN, the row locked, its
user's phone, the update, COMMIT): ~21 for the three an intake typically writes, the
largest job of a forward (measured: `bench/bench_jobs.py`).

The lock is what keeps a job run twice (the reconciler enqueues a slow job again) from
sending twice: the second run waits on the rows, and once the first commits, they are no
longer pending (PostgreSQL re-checks a locked row's condition against its new version).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, Text, text
from sqlalchemy.ext.asyncio import AsyncSession

from db.crypto import EncryptedText


@dataclass(frozen=True)
class Pending:
    """A notification to send: its text, and its user's phone (None: the log gets it)."""

    id: int
    text: str
    phone: str | None


@dataclass(frozen=True)
class Outcome:
    """What sending one notification gave: its new status, channel and time, or the error's
    name (a failure keeps the row's channel and sent time)."""

    id: int
    status: str  # sent, logged or failed
    channel: str | None = None
    sent_at: datetime | None = None
    error: str | None = None  # the exception's type name, never its message


_PENDING = (
    text(
        """
        SELECT n.id, n.text, u.phone
        FROM notification n LEFT JOIN app_user u ON u.id = n.user_id
        WHERE n.id = ANY(CAST(:ids AS integer[])) AND n.status NOT IN ('sent', 'logged')
        ORDER BY n.id
        FOR UPDATE OF n
        """
    )
    .columns(id=Integer, text=Text, phone=EncryptedText)
)

# One attempt more for each; a failure keeps the row's channel and sent time, a success its
# earlier error (as the job always did).
_RECORD = text(
    """
    UPDATE notification AS n
    SET status = o.status,
        attempts = n.attempts + 1,
        channel = COALESCE(o.channel, n.channel),
        error = COALESCE(o.error, n.error),
        sent_at = COALESCE(o.sent_at, n.sent_at)
    FROM unnest(CAST(:ids AS integer[]), CAST(:statuses AS text[]),
                CAST(:channels AS text[]), CAST(:sent_at AS timestamptz[]),
                CAST(:errors AS text[]))
         AS o(id, status, channel, sent_at, error)
    WHERE n.id = o.id
    """
)


async def lock_pending(session: AsyncSession, ids: Sequence[int]) -> list[Pending]:
    """The notifications among `ids` not yet sent or logged, locked until the caller's
    transaction ends, in id order (two jobs sharing rows lock them in the same order)."""
    if not ids:
        return []
    rows = await session.execute(_PENDING, {"ids": list(ids)})
    return [Pending(row.id, row.text, row.phone) for row in rows]


async def record_outcomes(session: AsyncSession, outcomes: Sequence[Outcome]) -> None:
    """Write every notification's outcome in one statement."""
    if not outcomes:
        return
    await session.execute(
        _RECORD,
        {
            "ids": [o.id for o in outcomes],
            "statuses": [o.status for o in outcomes],
            "channels": [o.channel for o in outcomes],
            "sent_at": [o.sent_at for o in outcomes],
            "errors": [o.error for o in outcomes],
        },
    )
