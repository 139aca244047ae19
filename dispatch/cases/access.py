"""A case the principal may see, or 404 (no hint that it exists): what every operation on
one case starts with, whatever domain it is in."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.web import sessions
from db.models import Case
from dispatch.common.lookup import scalar_or_404
from dispatch.staff.auth import Principal
from dispatch.staff.scope import case_filter


async def load_case(session, principal: Principal, case_id: int, *, lock: bool = False) -> Case:
    """The case if the principal may see it; 404 otherwise (no hint that it exists).
    With `lock`, the row is locked for an update in this transaction."""
    stmt = select(Case).where(Case.id == case_id, case_filter(principal))
    stmt = stmt.with_for_update() if lock else stmt
    return await scalar_or_404(session, stmt, "case_not_found", "未找到该案件")


@asynccontextmanager
async def locked_case(
    request: Request, principal: Principal, case_id: int
) -> AsyncIterator[tuple[AsyncSession, Case]]:
    """A transaction holding the case's row lock, for an endpoint that changes one case:
    the session and the case (404 if the principal may not see it)."""
    async with sessions(request)() as session, session.begin():
        yield session, await load_case(session, principal, case_id, lock=True)
