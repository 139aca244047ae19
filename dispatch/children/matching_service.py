"""Matching: the cases and child files like a case or a child, for the API, the console pages,
the jobs and the commands (the child file's own operations are in `file_service`).

Finding similar cases: the case's reports give profiles and blocking keys; the reports that
share a key (a GIN lookup on report.match_keys, in the caller's scope, in SQL) are the
candidates; each is scored against each of ours (workflows.matching), and a case counts with
its best pair. Nothing is scanned, so it stays fast on a large table without pg_trgm.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Select, bindparam, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import NullType

from db.crypto import phone_index
from db.models import Case, Report
from db.models_children import Child, Guardian
from dispatch.staff.auth import Principal
from dispatch.staff.scope import case_filter
from workflows.matching import Match, Profile, keys, score, thresholds
from workflows.matching.keys import query_keys, week_span
from workflows.matching.profiles import child_profile, report_profile
from workflows.matching.score import could_reach, name_signal, settings

NOT_SUGGESTED = ("merged", "invalid")


@dataclass(frozen=True)
class Similar:
    case_id: int
    score: float
    reasons: list[str]
    state: str
    created_at: datetime
    jurisdiction: str | None
    categories: list[str]


def profile_of(report: Report) -> Profile:
    """What a stored report says about its child, for scoring and keys."""
    return report_profile(
        child=report.child,
        address=report.address,
        phone_index=phone_index(report.reporter_phone),
        jurisdiction=report.jurisdiction_code,
        categories=report.categories or (),
        text=report.description,
        at=report.created_at,
    )


def refresh_keys(report: Report) -> None:
    """After the report's child or place changed (a correction): its keys follow."""
    report.match_keys = keys(profile_of(report))


_CANDIDATE_COLUMNS = (
    Report.id,
    Report.case_id,
    Report.child,
    Report.address,
    Report.phone_index,
    Report.jurisdiction_code,
    Report.categories,
    Report.description,
    Report.created_at,
)


def _candidates(principal: Principal, case: Case) -> Select:
    """Reports of other cases that may be suggested, in the principal's scope."""
    return (
        select(*_CANDIDATE_COLUMNS)
        .join(Case, Case.id == Report.case_id)
        .where(
            Report.case_id != case.id,
            Case.state.not_in(NOT_SUGGESTED),
            case_filter(principal),
        )
    )


def _nearest_in_place(principal: Principal, case: Case, profile: Profile) -> Select | None:
    """For an unnamed child, the reports of its place nearest in time to this report
    within the weeks its place-and-week keys cover: at most `place_candidates` before it
    and as many after, each side an index walk on report(jurisdiction_code, created_at)
    away from the report's moment that stops there (before, the keys' ~780 reports at
    100,000 cases were all fetched and sorted). Only keyed reports count (retention blanks
    the keys of an anonymised report); which of them hold the keys is checked on the rows
    (`_holds_week_key`). None when the profile asks for no such key."""
    span = week_span(profile)
    if span is None:
        return None
    start, end = span
    n = settings().windows.place_candidates
    # Not the keys themselves here: with the GIN index beside the walk the planner takes
    # the two conditions as independent (they are one), expects 3 rows, and fetches and
    # sorts every report of the weeks.
    here = _candidates(principal, case).add_columns(Report.match_keys.label("place_keys")).where(
        Report.jurisdiction_code == profile.jurisdiction,
        sa.func.cardinality(Report.match_keys) > 0,
    )
    after = (here.where(Report.created_at >= profile.at, Report.created_at < end)
             .order_by(Report.created_at).limit(n))
    before = (here.where(Report.created_at < profile.at, Report.created_at >= start)
              .order_by(Report.created_at.desc()).limit(n))
    both = union_all(select(after.subquery()), select(before.subquery())).subquery()
    return select(both)


def _holds_week_key(row, weeks: set[str]) -> bool:
    """A row of the place walk holds one of the keys asked for (the other lookups' rows
    hold what they were found by)."""
    keys = getattr(row, "place_keys", None)
    return keys is None or not weeks.isdisjoint(keys)


async def similar_cases(
    session: AsyncSession,
    principal: Principal,
    case: Case,
    *,
    limit: int = 10,
    minimum: float | None = None,
    reports: list[Report] | None = None,
) -> list[Similar]:
    """Other cases about the same child or incident, best first, only those the principal
    may see, scoring at least `minimum` (the config's suggest threshold by default).
    `reports`: the case's own, when the caller has them loaded already."""
    floor = thresholds().suggest if minimum is None else minimum
    if reports is None:
        reports = list(
            (await session.execute(select(Report).where(Report.case_id == case.id))).scalars()
        )
    mine = [profile_of(r) for r in reports]
    wanted = sorted({k for p in mine for k in query_keys(p)})
    if not wanted:
        return []
    others = [k for k in wanted if not k.startswith("w:")]
    statements = [s for s in (_nearest_in_place(principal, case, p) for p in mine)
                  if s is not None]
    if others:
        statements.append(
            _candidates(principal, case)
            .where(Report.match_keys.overlap(others))
            .order_by(Report.created_at.desc())
            .limit(settings().windows.candidates)
        )
    weeks = {k for k in wanted if k.startswith("w:")}
    found = {}
    for statement in statements:
        for row in await session.execute(statement):
            if _holds_week_key(row, weeks):
                found.setdefault(row.id, row)
    # Newest first, as one query gave them: of equal scores within a case, the newest
    # report's reasons are shown.
    rows = sorted(found.values(), key=lambda r: r.created_at, reverse=True)
    best: dict[int, Match] = {}
    for row in rows:
        theirs = report_profile(
            child=row.child,
            address=row.address,
            phone_index=row.phone_index,
            jurisdiction=row.jurisdiction_code,
            categories=row.categories or (),
            text=row.description,
            at=row.created_at,
        )
        for profile in mine:
            # Most candidates share only a broad key (a namesake, the estate, the week):
            # those certainly under the floor are not scored (the same result, less time).
            if not could_reach(profile, theirs, floor, name_signal(profile.name, theirs.name)):
                continue
            match = score(profile, theirs)
            if match.score >= floor and match.score > best.get(row.case_id, _NONE).score:
                best[row.case_id] = match
    if not best:
        return []
    ranked = sorted(best.items(), key=lambda item: (-item[1].score, -item[0]))[:limit]
    cases = {
        c.id: c
        for c in (
            await session.execute(select(Case).where(Case.id.in_([cid for cid, _ in ranked])))
        ).scalars()
    }
    return [
        Similar(
            case_id=cid,
            score=match.score,
            reasons=list(match.reasons),
            state=cases[cid].state,
            created_at=cases[cid].created_at,
            jurisdiction=cases[cid].jurisdiction_code,
            categories=list(cases[cid].categories),
        )
        for cid, match in ranked
    ]


_NONE = Match(score=-1.0, signals=())


async def very_likely_duplicates(
    session: AsyncSession, principal: Principal, cases: list[Case]
) -> dict[int, int]:
    """For the incoming list: case id → the case it very likely repeats (above the config's
    very_likely threshold), for those that have one."""
    floor = thresholds().very_likely
    out: dict[int, int] = {}
    for case in cases:
        found = await similar_cases(session, principal, case, limit=1, minimum=floor)
        if found:
            out[case.id] = found[0].case_id
    return out


async def _backfill(session: AsyncSession, model, columns, keys_of, batch: int) -> int:
    """Recompute the keys of every row of a table, a batch of columns at a time (no whole
    rows, no decryption of what the keys do not need), written back by executemany;
    returns the count."""
    done, last = 0, 0
    write = (
        update(model.__table__)
        .where(model.__table__.c.id == bindparam("row_id"))
        .values(match_keys=bindparam("keys"))
    )
    while True:
        rows = (
            await session.execute(
                select(model.id, *columns).where(model.id > last).order_by(model.id).limit(batch)
            )
        ).all()
        if not rows:
            return done
        await session.execute(write, await keys_of(rows))
        done += len(rows)
        last = rows[-1].id


async def backfill_keys(session: AsyncSession, *, batch: int = 2000) -> int:
    """Compute the keys of every report (those taken before matching existed, or after the
    rules changed); returns how many reports were updated."""

    async def keys_of(rows) -> list[dict]:
        return [{"row_id": r.id, "keys": keys(report_profile(
            child=r.child, address=r.address, phone_index=r.phone_index,
            jurisdiction=r.jurisdiction_code, text=r.description, at=r.created_at,
        ))} for r in rows]

    columns = (Report.child, Report.address, Report.phone_index, Report.jurisdiction_code,
               Report.description, Report.created_at)
    return await _backfill(session, Report, columns, keys_of, batch)


def child_profile_of(child: Any, phones: Iterable[str] | None = None) -> Profile:
    """A child record as a profile today (its age grown since it was given)."""
    return child_profile(
        name=child.name,
        gender=child.gender,
        birth_date=child.birth_date,
        age=child.age,
        age_given_on=child.age_given_on,
        address=child.address,
        jurisdiction=child.jurisdiction_code,
        phones=phones or (),
        categories=child.categories or (),
        id_index=child.id_index,
    )


def child_keys(child: Any, phones: Iterable[str]) -> list[str]:
    """A child record's blocking keys: its fields and its guardians' phones (their blind
    indexes). The one way a record's `match_keys` are made: the phones are required, so no
    caller can rebuild the keys without them (issue 12: a ledger row filling a field left
    the child unfindable by a guardian's number). `child` is a `Child` or any row with its
    columns; a caller holding a record should use `rekey_children`, which reads the phones."""
    return keys(child_profile_of(child, list(phones)))


async def rekey_children(session: AsyncSession, children: list[Child]) -> None:
    """Rebuild these records' `match_keys` from what they hold now and their guardians'
    phones as stored (one query): after any change to a record's fields or guardians (an
    edit, a guardian added, a merge, a ledger row's fill, a record opened from a case)."""
    phones = await guardian_phones(session, [c.id for c in children if c.id is not None])
    for child in children:
        child.match_keys = child_keys(child, phones.get(child.id, ()))


async def backfill_child_keys(session: AsyncSession, *, batch: int = 2000) -> int:
    """The same for every child record (with its guardians' phones)."""

    async def keys_of(rows) -> list[dict]:
        phones = await guardian_phones(session, [r.id for r in rows])
        return [{"row_id": r.id, "keys": child_keys(r, phones.get(r.id, ()))} for r in rows]

    columns = (Child.name, Child.gender, Child.birth_date, Child.age, Child.age_given_on,
               Child.address, Child.jurisdiction_code, Child.categories, Child.id_index)
    return await _backfill(session, Child, columns, keys_of, batch)


def guardian_phones_of_child() -> sa.ColumnElement:
    """A column for a query of children: the blind indexes of the child's guardians'
    numbers (an array, empty for none), so the candidates and their phones come in one
    query (a list as the driver gives it). With `child_profile_of(child, phones)`, what a
    candidate child is scored as: without them a report from a guardian's phone found the
    child by its phone key, but the "same phone" signal never counted (issue 12)."""
    return sa.type_coerce(sa.func.array(
        select(Guardian.phone_index)
        .where(Guardian.child_id == Child.id, Guardian.phone_index.is_not(None))
        .order_by(Guardian.id)
        .correlate(Child)
        .scalar_subquery()
    ), NullType()).label("phones")


async def guardian_phones(session: AsyncSession, child_ids: list[int]) -> dict[int, list[str]]:
    """The blind indexes of each child's guardians' numbers (what matching compares)."""
    out: dict[int, list[str]] = {}
    if not child_ids:
        return out
    rows = await session.execute(
        select(Guardian.child_id, Guardian.phone_index).where(
            Guardian.child_id.in_(child_ids), Guardian.phone_index.is_not(None)
        )
    )
    for child_id, phone in rows:
        out.setdefault(child_id, []).append(phone)
    return out
