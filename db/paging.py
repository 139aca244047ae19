"""Keyset paging of the staff lists: newest first, the next page asked for as "before the
last id shown", so a page never shifts while new rows arrive."""

from typing import Any

from sqlalchemy import Select


def newest_first(stmt: Select, id_column: Any, *, limit: int, before_id: int | None) -> Select:
    """The statement ordered newest first, `limit` rows, below `before_id` when given."""
    stmt = stmt.order_by(id_column.desc()).limit(limit)
    return stmt.where(id_column < before_id) if before_id else stmt


def next_before_id(items: list[Any], limit: int) -> int | None:
    """Where the next page starts: after a full page, its last id; else there is none."""
    return items[-1].id if items and len(items) == limit else None
