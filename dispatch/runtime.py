"""What a running process holds: the database engine, Redis, settings and the signing key."""

from dataclasses import dataclass, field

from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.engine import APP_ROLE, make_engine, make_sessionmaker
from db.settings import Settings, secret_key


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    redis_url: str
    secret_key: str
    # Verified bearer tokens → (when, accounts counter, principal); see
    # dispatch.staff.auth.PRINCIPAL_TTL.
    principal_cache: dict = field(default_factory=dict)
    # When to ask Redis for the accounts' change counter again after it failed to answer.
    redis_retry_at: float = 0.0

    async def close(self) -> None:
        await self.redis.aclose()
        await self.engine.dispose()


def make_runtime(settings: Settings, database_url: str, redis_url: str) -> Runtime:
    engine = make_engine(database_url, pool_size=settings.hotline_db_pool_size, role=APP_ROLE)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        redis=Redis.from_pool(
            # Bounded, and waited for when all are busy: a race of a hundred requests shares
            # the pool's connections instead of opening one each (redis-py reads its own
            # package metadata for every new connection: ~1 ms of CPU in a claim race).
            BlockingConnectionPool.from_url(
                redis_url,
                max_connections=settings.hotline_db_pool_size,
                timeout=2,
                socket_timeout=2,
                socket_connect_timeout=2,
            )
        ),
        redis_url=redis_url,
        secret_key=secret_key(settings),
    )
