"""Load one row in the caller's scope, or 404: the lookup every operation on one record
starts with, written once (the statement carries the scope filter and any lock)."""

from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from workflows.errors import NotFound


async def scalar_or_404(session: AsyncSession, stmt: Executable, code: str, message: str) -> Any:
    """The one entity `stmt` selects; NotFound(code, message) when there is none (outside
    the caller's scope as when it does not exist: no hint either way)."""
    found = (await session.execute(stmt)).scalar_one_or_none()
    if found is None:
        raise NotFound(code, message)
    return found


async def row_or_404(session: AsyncSession, stmt: Executable, code: str, message: str) -> Row[Any]:
    """The first row (several columns) `stmt` selects; NotFound(code, message) when none."""
    row = (await session.execute(stmt)).first()
    if row is None:
        raise NotFound(code, message)
    return row
