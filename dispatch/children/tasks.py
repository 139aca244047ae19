"""Jobs of the child file: matching a new case after intake (topic `case.match`).

Written by the intake job in its own transaction, so routing an emergency never waits for
matching. Idempotent: a case already linked to a child is not given another, and the
likely-duplicate mark is computed afresh.
"""

from typing import Any

from sqlalchemy import select

from db.engine import transaction
from db.handlers import JobContext, finish
from db.models import Case, Report
from dispatch.children import records
from dispatch.children.matching_service import refresh_keys

TOPIC = "case.match"


async def match_case(ctx: JobContext, payload: dict[str, Any]) -> None:
    async with transaction(ctx.sessions) as session:
        case = await session.get(Case, payload["case_id"], with_for_update=True)
        if case is not None and case.state not in ("merged", "invalid"):
            # The reports' blocking keys first: other cases find this one through them.
            reports = list(
                (await session.execute(select(Report).where(Report.case_id == case.id))).scalars()
            )
            for report in reports:
                refresh_keys(report)
            await records.on_intake(session, case, reports)
        await finish(session, ctx)
