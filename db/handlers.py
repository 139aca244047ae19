"""The shape of a background job handler, shared by `dispatch` (which runs them) and
`channels` (which provides the senders), so neither has to import the other's internals."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.settings import Settings


@dataclass
class JobContext:
    sessions: async_sessionmaker[AsyncSession]
    settings: Settings


Handler = Callable[[JobContext, dict[str, Any]], Awaitable[None]]
