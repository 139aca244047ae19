"""The blind-index key guard: a process refuses to start with a ring whose oldest key (the
one the blind indexes derive from, db.crypto) is not the one the database's indexes were
made under (`index_key`, 0037). Without it, removing that key from the ring silently breaks
every lookup by phone number, name or matching key (a texter who sent STOP is texted again,
a blocked number gets through)."""

import asyncio

import asyncpg

from db import crypto


class IndexKeyMismatch(RuntimeError):
    """The configured ring's index key is not the database's."""


def message(recorded: str, configured: str) -> str:
    return (
        f"数据密钥环与数据库不符：数据库中的盲索引（电话号码、儿童姓名、匹配键）由索引密钥 "
        f"{recorded} 生成，而当前密钥环的最旧密钥给出 {configured}。最旧的密钥被移除或更换了："
        "请把原来的最旧密钥放回 HOTLINE_DATA_KEY（或数据目录的 data_key）的最后一项，再启动；"
        "见 docs/operations.md「Key rotation」。\n"
        f"The data key ring does not match the database: its blind indexes (phone numbers, "
        f"children's names, matching keys) were made under index key {recorded}, but the "
        f"configured ring's oldest key gives {configured}. The oldest key was removed or "
        "replaced: put the original oldest key back as the last entry of HOTLINE_DATA_KEY (or "
        "of the data dir's data_key) and start again; see docs/operations.md, Key rotation."
    )


async def check_connection(conn: asyncpg.Connection) -> str | None:
    """Record the ring's index key id if the database has none yet, else compare; raises
    IndexKeyMismatch. None when the schema is older than 0037 (nothing to compare)."""
    configured = crypto.ring().index_key_id
    try:
        # The row just written, or the one there (the statement's snapshot has no new row).
        recorded = await conn.fetchval(
            "WITH made AS (INSERT INTO index_key (id, key_id) VALUES (1, $1)"
            " ON CONFLICT (id) DO NOTHING RETURNING key_id)"
            " SELECT key_id FROM made UNION ALL SELECT key_id FROM index_key WHERE id = 1"
            " LIMIT 1",
            configured,
        )
    except asyncpg.UndefinedTableError:
        return None
    if recorded != configured:
        raise IndexKeyMismatch(message(recorded, configured))
    return recorded


async def check(database_url: str) -> str | None:
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return await check_connection(conn)
    finally:
        await conn.close()


def ensure(database_url: str) -> str | None:
    """`check` from synchronous code (the commands, before they start serving)."""
    return asyncio.run(check(database_url))
