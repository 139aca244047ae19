"""Notifying staff: a Notification row and an outbox row, in the caller's transaction.

Who is told: a referral's office liaisons when it arrives; the claimant (or the office) when
a deadline nears; the department's and the center's supervisors over the jurisdiction when
it passes (督办) and when it is flagged (挂牌督办).
"""

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AppUser, Case, Jurisdiction, Notification, Outbox

CENTER = "minor_protection_center"
# Where a transaction keeps its one notify.send row.
BATCH_KEY = "hotline.notify_batch"


async def _ancestor_codes(session: AsyncSession, jurisdiction: str | None) -> list[str]:
    if not jurisdiction:
        return list(
            (
                await session.execute(select(Jurisdiction.code).where(Jurisdiction.level == 1))
            ).scalars()
        )
    path = await session.scalar(select(Jurisdiction.path).where(Jurisdiction.code == jurisdiction))
    return path.strip("/").split("/") if path else []


async def office_liaisons(session: AsyncSession, department: str, jurisdiction: str) -> list[int]:
    """Liaisons of the department whose own jurisdiction is the office's."""
    rows = await session.execute(
        select(AppUser.id).where(
            AppUser.active,
            AppUser.role == "liaison",
            AppUser.department_code == department,
            AppUser.jurisdiction_code == jurisdiction,
        )
    )
    return list(rows.scalars())


async def supervisors(
    session: AsyncSession, department: str | None, jurisdiction: str | None
) -> list[int]:
    """The center's supervisors and the department's, at the jurisdiction or above it."""
    above = await _ancestor_codes(session, jurisdiction)
    center = or_(AppUser.department_code.is_(None), AppUser.department_code == CENTER)
    own_department = AppUser.department_code == department if department else center
    rows = await session.execute(
        select(AppUser.id).where(
            AppUser.active,
            AppUser.role == "supervisor",
            AppUser.jurisdiction_code.in_(above),
            or_(center, own_department),
        )
    )
    return list(rows.scalars())


async def notify(
    session: AsyncSession,
    user_ids: list[int],
    kind: str,
    text: str,
    *,
    case_id: int | None = None,
    referral_id: int | None = None,
) -> int:
    """Queue one notification per user. No personal data in text."""
    return await queue_notes(
        session, notes_for(user_ids, kind, text, case_id=case_id, referral_id=referral_id)
    )


async def notify_case_supervisors(
    session: AsyncSession, case: Case, kind: str, text: str, *, referral_id: int | None = None
) -> int:
    """The center's supervisors over the case's place are told: what a case asks of the
    center (a plan to approve, a returned referral, an overdue visit)."""
    users = await supervisors(session, None, case.jurisdiction_code)
    return await notify(session, users, kind, text, case_id=case.id, referral_id=referral_id)


def notes_for(
    user_ids: list[int],
    kind: str,
    text: str,
    *,
    case_id: int | None = None,
    referral_id: int | None = None,
) -> list[Notification]:
    """One notification per user (each once), not yet queued."""
    return [
        Notification(case_id=case_id, referral_id=referral_id, user_id=uid, kind=kind, text=text)
        for uid in dict.fromkeys(user_ids)
    ]


async def queue_notes(session: AsyncSession, notes: list[Notification]) -> int:
    """Add the notifications to the transaction, and to its one `notify.send` row."""
    if not notes:
        return 0
    session.add_all(notes)
    await session.flush()
    queue_note_ids(session, [n.id for n in notes])
    return len(notes)


def queue_note_ids(session: AsyncSession, ids: list[int]) -> None:
    """Have the notifications (written in this transaction) sent.

    All the notifications of one transaction share one outbox row (one `notify.send` job
    sends them all): an intake that routes to three offices costs one job, not ten."""
    if not ids:
        return
    txn = session.get_transaction()
    batch = session.info.get(BATCH_KEY)
    if batch is not None and batch[0] is txn and txn is not None and txn.is_active:
        row = batch[1]
        row.payload = {"notification_ids": [*row.payload["notification_ids"], *ids]}
    else:
        row = Outbox(topic="notify.send", payload={"notification_ids": ids})
        session.add(row)
        session.info[BATCH_KEY] = (txn, row)
