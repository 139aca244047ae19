"""Re-encryption after a key rotation: every sealed column (db.crypto's EncryptedText and
EncryptedJSON, found in the tables' metadata, so a new sealed column is never forgotten)
rewritten under the ring's newest key, in batches of short transactions.

A value is rewritten only if it still is what was read (a concurrent write under the new key
wins), so the command can run beside the service and be run again after an interruption;
values already under the newest key are left alone, and what a rerun has to do is zero.
"""

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import SQLModel

from db import (  # noqa: F401  (the tables' metadata)
    casework,
    console,
    models,
    models_children,
    partners,
    supervision,
    telephony,
)
from db.crypto import EncryptedJSON, EncryptedText, decrypt, encrypt, ring


def sealed_columns() -> list[tuple[sa.Table, sa.Column]]:
    """Every (table, column) stored as ciphertext, in a stable order."""
    found = []
    for table in SQLModel.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, EncryptedText | EncryptedJSON):
                found.append((table, column))
    return found


_START = object()  # before the first key


async def _batch(
    session: AsyncSession, table: sa.Table, column: sa.Column, after: object, size: int
) -> tuple[int, object | None]:
    key = table.primary_key.columns.values()[0]
    stored = sa.type_coerce(column, sa.Text)  # the ciphertext itself, not opened
    current = ring().current + ":"
    query = sa.select(key, stored).where(
        stored.is_not(None), stored != "", sa.func.left(stored, len(current)) != current
    )
    if after is not _START:  # keys are ids, or text (the opt-outs' blind index)
        query = query.where(key > after)
    rows = (await session.execute(query.order_by(key).limit(size))).all()
    done = 0
    for row_id, token in rows:
        fresh = encrypt(decrypt(token))
        result = await session.execute(
            sa.update(table)
            .where(key == row_id, stored == token)
            .values({column.name: sa.type_coerce(fresh, sa.Text)})
        )
        done += result.rowcount
    return done, (rows[-1][0] if len(rows) == size else None)


async def reseal(sessions: async_sessionmaker, batch: int = 500) -> dict[str, int]:
    """Rewrite every sealed value not under the newest key; counts per `table.column`."""
    counts: dict[str, int] = {}
    for table, column in sealed_columns():
        total, after = 0, _START
        while after is not None:
            async with sessions() as session, session.begin():
                done, after = await _batch(session, table, column, after, batch)
            total += done
        counts[f"{table.name}.{column.name}"] = total
    return counts
