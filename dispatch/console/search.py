"""Case search for the center: by case number, receipt code, phone, or words of the report
(the account, the child's name, the address), narrowed by state, category, place and date;
and the child files by name.

Plain SQL (ILIKE with escaped wildcards) on the account and the address: it works on every
PostgreSQL, pg_trgm or not. The child's name is ciphertext at rest: it is found through
the report's keyed hashes of its character pairs (db.crypto.name_index, GIN), so two or more
consecutive characters of a name find it and a single character does not (the page says so).
Results carry no personal data beyond a masked phone and a masked snippet.
"""

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from db.columns import case_id_of
from db.crypto import NAME_QUERY_MIN, name_index, name_key, phone_index
from db.models import Case, Jurisdiction, Report
from db.models_children import Child
from dispatch.children.records import child_filter
from dispatch.console.incoming import SNIPPET_CHARS
from dispatch.console.masking import mask_numbers
from dispatch.console.timefmt import local_zone
from dispatch.staff.auth import Principal
from dispatch.staff.scope import case_filter
from workflows.cases import receipts
from workflows.phones import mask_phone, normalize_phone


@dataclass(frozen=True)
class SearchQuery:
    text: str = ""
    state: str = ""
    category: str = ""
    jurisdiction: str = ""
    date_from: date | None = None
    date_to: date | None = None

    @property
    def name_too_short(self) -> bool:
        """Words were searched, too short to look for a child's name by."""
        return (
            bool(self.text)
            and _looked_up(self.text) is None
            and len(name_key(self.text)) < NAME_QUERY_MIN
        )

    @property
    def empty(self) -> bool:
        return not any(
            (self.text, self.state, self.category, self.jurisdiction, self.date_from, self.date_to)
        )


@dataclass(frozen=True)
class FoundCase:
    case_id: int
    state: str
    risk_level: str | None
    categories: list[str]
    emergency: bool
    jurisdiction: str | None
    created_at: datetime
    phone: str | None  # masked
    snippet: str


@dataclass(frozen=True)
class FoundChild:
    child_id: int
    name: str | None
    jurisdiction: str | None


def in_subtree(code_column, code: str) -> ColumnElement[bool]:
    """`code_column` lies at jurisdiction `code` or below it."""
    root = select(Jurisdiction.path).where(Jurisdiction.code == code).scalar_subquery()
    return code_column.in_(
        select(Jurisdiction.code).where(Jurisdiction.path.like(root.concat("%")))
    )


_PHONE_TYPED = re.compile(r"\+?[\d\s()-]{7,20}")


def _looked_up(text: str) -> ColumnElement[bool] | None:
    """A case number, a receipt code or a phone number: looked up as such. Case ids are
    time-based (15 digits and more), so digits may be a case's or a phone's: both are looked
    up."""
    case_id = case_id_of(text)
    by_id = Case.id == case_id if case_id is not None else None
    code = receipts.normalize(text)
    if code:
        by_code = Report.receipt_code == code
        return by_code if by_id is None else or_(by_id, by_code)
    # phonenumbers reads a number out of any text, letters as keypad digits ("编号8735a6a3ef"
    # is a valid mobile number to it), so only what is typed as a number is looked up as one.
    phone = normalize_phone(text) if _PHONE_TYPED.fullmatch(text) else None
    if phone:
        by_phone = Report.phone_index == phone_index(phone)  # the number is ciphertext
        return by_phone if by_id is None else or_(by_id, by_phone)
    return by_id


def _text_filter(text: str) -> ColumnElement[bool]:
    found = _looked_up(text)
    if found is not None:
        return found
    words = [
        Report.description.icontains(text, autoescape=True),
        Report.address.icontains(text, autoescape=True),
    ]
    pairs = name_index(text)
    if pairs:
        words.append(Report.name_index.contains(pairs))
    return or_(*words)


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=local_zone())


async def search_cases(
    session: AsyncSession, principal: Principal, query: SearchQuery, *, limit: int = 50
) -> list[FoundCase]:
    """Newest first; one row per case (its latest matching report)."""
    stmt = (
        select(  # labelled as FoundCase's fields
            Case.id.label("case_id"),
            Case.state,
            Case.risk_level,
            Case.categories,
            Case.emergency,
            Case.jurisdiction_code.label("jurisdiction"),
            Case.created_at,
            Report.reporter_phone.label("phone"),
            func.left(Report.description, SNIPPET_CHARS).label("snippet"),
        )
        .join(Report, Report.case_id == Case.id)
        .where(case_filter(principal))
        .ext(distinct_on(Case.id))
        .order_by(Case.id.desc(), Report.id.desc())
        .limit(limit)
    )
    if query.text:
        stmt = stmt.where(_text_filter(query.text))
    if query.state:
        stmt = stmt.where(Case.state == query.state)
    if query.category:
        stmt = stmt.where(Case.categories.any(query.category))
    if query.jurisdiction:
        stmt = stmt.where(in_subtree(Case.jurisdiction_code, query.jurisdiction))
    if query.date_from:
        stmt = stmt.where(Case.created_at >= _local_midnight(query.date_from))
    if query.date_to:
        stmt = stmt.where(Case.created_at < _local_midnight(query.date_to + timedelta(days=1)))
    rows = (await session.execute(stmt)).all()
    return [
        FoundCase(
            **{**r._mapping, "phone": mask_phone(r.phone), "snippet": mask_numbers(r.snippet)}
        )
        for r in rows
    ]


async def search_children(
    session: AsyncSession, principal: Principal, text: str, *, limit: int = 20
) -> list[FoundChild]:
    """Child files (not merged away) whose name holds two or more consecutive characters of
    the text, those the principal may see (the file's scope), newest first."""
    pairs = name_index(text)
    if not pairs or _looked_up(text) is not None:
        return []
    rows = await session.execute(
        select(Child.id, Child.name, Child.jurisdiction_code)
        .where(
            Child.name_index.contains(pairs),
            Child.merged_into_id.is_(None),
            child_filter(principal),
        )
        .order_by(Child.id.desc())
        .limit(limit)
    )
    return [FoundChild(r.id, r.name, r.jurisdiction_code) for r in rows]
