"""The deadline sweeps' batch (referrals, tasks): one query, whatever the rows are."""

from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Case


async def due_with_case(
    session: AsyncSession, model: Any, now: datetime, limit: int
) -> list[Row[Any]]:
    """(row, case) for the `model` rows whose next check has come, earliest first, each
    locked; rows another sweeper holds are skipped, not waited for."""
    return list(
        (
            await session.execute(
                select(model, Case)
                .join(Case, Case.id == model.case_id)
                .where(model.next_check_at <= now)
                .order_by(model.next_check_at)
                .limit(limit)
                .with_for_update(of=model, skip_locked=True)
            )
        ).all()
    )
