"""A page of a newest-first list that may be narrowed to one case (a case's calls, its SMS
threads): the three query parameters as one value, and what they do to the statement,
written once."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select

from db.paging import newest_first, next_before_id


@dataclass(frozen=True, slots=True)
class CasePage:
    """Which rows: one case's (`case_id`) or all the caller may see; `limit` of them, below
    `before_id` (the previous page's last id) when given."""

    case_id: int | None = None
    limit: int = 50
    before_id: int | None = None

    def of(self, stmt: Select, model: Any) -> Select:
        """`stmt` (over `model`, which has `id` and `case_id`) narrowed to this page."""
        if self.case_id:
            stmt = stmt.where(model.case_id == self.case_id)
        return newest_first(stmt, model.id, limit=self.limit, before_id=self.before_id)

    def next_before_id(self, items: list[Any]) -> int | None:
        """Where the page after this one starts (None after the last)."""
        return next_before_id(items, self.limit)
