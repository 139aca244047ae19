"""The deadline board at scale: each section is read on its own, so a flood of overdue
referrals never pushes the flagged ones off the board, and the headings count them all."""

from datetime import UTC, datetime

from sqlalchemy import select, update

from db.models import Jurisdiction, Referral
from dispatch.console.board import deadline_board
from dispatch.staff.auth import Principal

pytest_plugins = ("tests.fixtures.console",)


async def test_flagged_referrals_stay_on_the_board_behind_any_number_of_overdue_ones(
    new_case, sessions, make_user
):
    overdue_case, flagged_case = await new_case(), await new_case()
    long_ago, later = datetime(1999, 1, 1, tzinfo=UTC), datetime(2000, 1, 1, tzinfo=UTC)
    async with sessions() as session, session.begin():
        for case_id, due, escalation in ((overdue_case, long_ago, 2), (flagged_case, later, 3)):
            await session.execute(
                update(Referral)
                .where(Referral.case_id == case_id, Referral.department_code == "police")
                .values(claim_due_at=due, escalation=escalation)
            )
    user = await make_user("supervisor")
    async with sessions() as session:
        path = await session.scalar(select(Jurisdiction.path).where(Jurisdiction.code == "990100"))
        principal = Principal(user.id, user.username, "supervisor", None, "990100", path)
        board = await deadline_board(session, principal, datetime.now(UTC), limit=1)
    # One row per section, the most urgent: the overdue one does not take the flagged's place.
    assert [i.case.id for i in board.overdue] == [overdue_case]
    assert [i.case.id for i in board.flagged] == [flagged_case]
    assert board.counts["flagged"] >= 1 and board.counts["overdue"] >= 1
