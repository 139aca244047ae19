"""Routing's writes: a case's new referrals, their timeline entries and the notifications
that tell each queued one's office liaisons (or, for an unrouted one, the supervisors the
caller names), in one statement inside the caller's transaction.

Every caller that creates referrals (intake's job, registration, a correction, a help plan,
a share routed by hand) goes through `dispatch.referrals.service.create_referrals`, which
computes the values (deadlines, texts) and calls this. Through the ORM the same work was
five or six round trips and a dozen ORM objects per routed intake, the largest part of the
intake job (measured: `bench/bench_jobs.py`).

A department that already holds a live referral of the case gets none: the partial unique
index `ix_referral_one_active_per_department` says which are live, and its conflict skips
the row.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from db.timeline import insert_events


@dataclass(frozen=True)
class NewReferral:
    """One department's share to create, as `create_referrals` planned it."""

    department: str
    office_id: int | None
    jurisdiction_code: str | None
    role: str
    status: str  # queued (it has an office) or unrouted
    claim_due_at: datetime | None
    action_due_at: datetime | None
    next_check_at: datetime | None
    reason: str  # the timeline entry's
    note: str  # the notifications' text


@dataclass(frozen=True)
class Made:
    """A referral created, and the notifications written about it."""

    id: int
    department: str
    status: str
    notification_ids: list[int]


# An active liaison of the referral's office (its department, at its jurisdiction): who is
# told when a referral reaches the office. `m` is the referral.
LIAISON_OF = (
    "u.active AND u.role = 'liaison' AND u.department_code = m.department_code"
    " AND u.jurisdiction_code = m.jurisdiction_code"
)

# The timeline entry of each referral made: its department and, when queued, its office.
_EVENTS = insert_events(
    ("case_id", "event", "actor", "reason", "data", "created_at"),
    """
        SELECT m.case_id,
               CASE m.status WHEN 'queued' THEN 'referral_created' ELSE 'referral_unrouted' END,
               :actor, d.reason,
               CASE m.status
                   WHEN 'queued' THEN jsonb_build_object(
                       'referral_id', m.id, 'department', m.department_code, 'role', m.role,
                       'office_id', m.office_id)
                   ELSE jsonb_build_object('referral_id', m.id, 'department', m.department_code)
               END,
               :now
        FROM m JOIN d ON d.department = m.department_code
        ORDER BY d.n
    """,
)

_INSERT = text(
    f"""
    WITH d AS (
        SELECT * FROM unnest(
            CAST(:departments AS text[]), CAST(:offices AS integer[]),
            CAST(:jurisdictions AS text[]), CAST(:roles AS text[]), CAST(:statuses AS text[]),
            CAST(:claim_due AS timestamptz[]), CAST(:action_due AS timestamptz[]),
            CAST(:next_check AS timestamptz[]), CAST(:reasons AS text[]),
            CAST(:notes AS text[])
        ) WITH ORDINALITY AS d(department, office_id, jurisdiction_code, role, status,
                               claim_due_at, action_due_at, next_check_at, reason, note, n)
    ), m AS (
        INSERT INTO referral (case_id, department_code, office_id, jurisdiction_code, role,
                              status, claim_due_at, action_due_at, next_check_at, escalation,
                              delivered_at, created_at, updated_at)
        SELECT CAST(:case_id AS bigint), department, office_id, jurisdiction_code, role,
               status, claim_due_at, action_due_at, next_check_at, 0,
               CASE WHEN status = 'queued' THEN CAST(:now AS timestamptz) END, :now, :now
        FROM d ORDER BY n
        ON CONFLICT (case_id, department_code)
            WHERE status NOT IN ('returned', 'cancelled', 'withdrawn') DO NOTHING
        RETURNING id, case_id, department_code, jurisdiction_code, office_id, role, status
    ), e AS (
        {_EVENTS}
    ), told AS (
        SELECT m.id AS referral_id, m.case_id, u.id AS user_id, d.note, d.n,
               'referral_new' AS kind
        FROM m JOIN d ON d.department = m.department_code JOIN app_user u ON {LIAISON_OF}
        WHERE m.status = 'queued'
        UNION ALL
        SELECT m.id, m.case_id, s.user_id, d.note, d.n, 'referral_unrouted'
        FROM m JOIN d ON d.department = m.department_code
        CROSS JOIN unnest(CAST(:supervisors AS integer[])) AS s(user_id)
        WHERE m.status = 'unrouted'
    ), notes AS (
        INSERT INTO notification (case_id, referral_id, user_id, kind, text, status, attempts)
        SELECT case_id, referral_id, user_id, kind, note, 'pending', 0
        FROM told ORDER BY n, user_id
        RETURNING id, referral_id
    )
    SELECT m.id, m.department_code, m.status,
           (SELECT array_agg(notes.id ORDER BY notes.id) FROM notes
            WHERE notes.referral_id = m.id) AS notification_ids
    FROM m JOIN d ON d.department = m.department_code
    ORDER BY d.n
    """
)


async def insert_referrals(
    session: AsyncSession,
    case_id: int,
    rows: list[NewReferral],
    actor: str,
    now: datetime,
    supervisors: list[int],
) -> list[Made]:
    """Create the referrals (in `rows`' order, departments already served skipped), their
    timeline entries and notifications; `supervisors` are told of the unrouted ones."""
    if not rows:
        return []
    found = await session.execute(
        _INSERT,
        {
            "case_id": case_id,
            "departments": [r.department for r in rows],
            "offices": [r.office_id for r in rows],
            "jurisdictions": [r.jurisdiction_code for r in rows],
            "roles": [r.role for r in rows],
            "statuses": [r.status for r in rows],
            "claim_due": [r.claim_due_at for r in rows],
            "action_due": [r.action_due_at for r in rows],
            "next_check": [r.next_check_at for r in rows],
            "reasons": [r.reason for r in rows],
            "notes": [r.note for r in rows],
            "actor": actor,
            "now": now,
            "supervisors": supervisors,
        },
    )
    return [
        Made(row.id, row.department_code, row.status, list(row.notification_ids or ()))
        for row in found
    ]


_OFFICE_TOLD = text(
    f"""
    INSERT INTO notification (case_id, referral_id, user_id, kind, text, status, attempts)
    SELECT m.case_id, m.id, u.id, 'referral_new', :note, 'pending', 0
    FROM referral m JOIN app_user u ON {LIAISON_OF}
    WHERE m.id = :referral_id
    ORDER BY u.id
    RETURNING id
    """
)


async def tell_office(session: AsyncSession, referral_id: int, note: str) -> list[int]:
    """A referral routed after its creation has reached its office: its liaisons are told
    (`note`), as `insert_referrals` tells them of a new one. Returns the notifications'
    ids. The referral's office must be flushed already."""
    found = await session.execute(_OFFICE_TOLD, {"referral_id": referral_id, "note": note})
    return list(found.scalars())
