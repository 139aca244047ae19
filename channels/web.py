"""Small request helpers every HTTP adapter shares (the app puts a runtime on app.state)."""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.errors import ApiError
from db.engine import raw_connection, transaction

T = TypeVar("T")


def sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    return request.app.state.runtime.sessions


def secret_key(request: Request) -> str:
    return request.app.state.runtime.secret_key


def client_ip(request: Request) -> str | None:
    """The client's address: the real one behind trusted proxies (`channels.proxies`
    settles it for the whole request), what the audit log and the limits record."""
    return request.client.host if request.client else None


async def in_transaction(
    request: Request, operation: Callable[..., Awaitable[T]], /, **kwargs: Any
) -> T:
    """Run one service operation for an endpoint or a page, in a transaction of its own:
    the operation gets the session and the client's address (`session=`, `ip=`) besides
    `kwargs`, and commits before the answer is sent."""
    async with transaction(sessions(request)) as session:
        return await operation(session=session, ip=client_ip(request), **kwargs)


async def json_only(request: Request) -> None:
    """Dependency for JSON endpoints: anything else is 415, not a confusing 422."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise ApiError(415, message="请以 application/json 提交")


async def database_answers(request: Request) -> None:
    """Dependency of pages that lead to a write (the report form): while the database is
    down the reporter is shown where to turn at once, not after typing a whole report."""
    async with raw_connection(request.app.state.runtime.engine) as conn:
        await conn.fetchval("SELECT 1")
