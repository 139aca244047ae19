"""What a running process holds: the database engine, Redis, settings and the signing key."""

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.engine import make_engine, make_sessionmaker
from db.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    redis_url: str
    secret_key: str
    # Verified bearer tokens → (when, principal); see dispatch.auth.PRINCIPAL_TTL.
    principal_cache: dict = field(default_factory=dict)

    async def close(self) -> None:
        await self.redis.aclose()
        await self.engine.dispose()


def secret_key(settings: Settings) -> str:
    """HOTLINE_SECRET_KEY, or one generated once and kept (0600) in the data dir."""
    if settings.hotline_secret_key:
        return settings.hotline_secret_key
    path = Path(settings.hotline_data_dir) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def make_runtime(settings: Settings, database_url: str, redis_url: str) -> Runtime:
    engine = make_engine(database_url, pool_size=settings.hotline_db_pool_size)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        redis=Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2),
        redis_url=redis_url,
        secret_key=secret_key(settings),
    )
