"""Intake writes in the caller's transaction and holds its twin-lock until the end of it:
a concurrent twin waits (and then finds the first), and a rollback leaves nothing behind."""

from sqlalchemy import func, select, text

from db.models import Report
from workflows.cases.intake import NewReport, record_report

TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))")


async def test_the_twin_lock_lasts_until_commit_and_a_rollback_keeps_nothing(sessions):
    new = NewReport(channel="12345", external_id="LOCK-CHECK-1", description="锁测试")
    async with sessions() as session:
        await session.begin()
        await record_report(session, new)
        async with sessions() as other, other.begin():
            # A twin arriving now would have to wait: the lock is still ours.
            assert await other.scalar(TRY_LOCK, {"key": "12345:LOCK-CHECK-1"}) is False
        await session.rollback()
    async with sessions() as session:
        count = await session.scalar(
            select(func.count()).where(Report.external_id == "LOCK-CHECK-1")
        )
    assert count == 0
    async with sessions() as session, session.begin():
        assert await session.scalar(TRY_LOCK, {"key": "12345:LOCK-CHECK-1"}) is True
