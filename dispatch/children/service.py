"""The child file and matching, for the API, the console pages, the jobs and the commands.

Finding similar cases: the case's reports give profiles and blocking keys; the reports that
share a key (a GIN lookup on report.match_keys, in the caller's scope, in SQL) are the
candidates; each is scored against each of ours (workflows.matching), and a case counts with
its best pair. Nothing is scanned, so it stays fast on a large table without pg_trgm.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.crypto import phone_index
from db.models import Case, Report
from db.models_children import Child, Guardian
from dispatch.staff.auth import Principal
from dispatch.staff.scope import case_filter
from workflows.matching import Match, Profile, keys, score, thresholds
from workflows.matching.keys import query_keys
from workflows.matching.profiles import child_profile, report_profile
from workflows.matching.score import config, could_reach, name_signal

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
    Report.case_id,
    Report.child,
    Report.address,
    Report.phone_index,
    Report.jurisdiction_code,
    Report.categories,
    Report.description,
    Report.created_at,
)


async def similar_cases(
    session: AsyncSession,
    principal: Principal,
    case: Case,
    *,
    limit: int = 10,
    minimum: float | None = None,
) -> list[Similar]:
    """Other cases about the same child or incident, best first, only those the principal
    may see, scoring at least `minimum` (the config's suggest threshold by default)."""
    floor = thresholds()["suggest"] if minimum is None else minimum
    mine = [
        profile_of(r)
        for r in (
            await session.execute(select(Report).where(Report.case_id == case.id))
        ).scalars()
    ]
    wanted = sorted({k for p in mine for k in query_keys(p)})
    if not wanted:
        return []
    rows = (
        await session.execute(
            select(*_CANDIDATE_COLUMNS)
            .join(Case, Case.id == Report.case_id)
            .where(
                Report.match_keys.overlap(wanted),
                Report.case_id != case.id,
                Case.state.not_in(NOT_SUGGESTED),
                case_filter(principal),
            )
            .order_by(Report.created_at.desc())
            .limit(config()["windows"]["candidates"])
        )
    ).all()
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
    floor = thresholds()["very_likely"]
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


def child_profile_of(child: Child, phones: list[str] | None = None) -> Profile:
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


def refresh_child_keys(child: Child, phones: list[str] | None = None) -> None:
    child.match_keys = keys(child_profile_of(child, phones))


async def backfill_child_keys(session: AsyncSession, *, batch: int = 2000) -> int:
    """The same for every child record (with its guardians' phones)."""

    async def keys_of(rows) -> list[dict]:
        phones = await guardian_phones(session, [r.id for r in rows])
        return [{"row_id": r.id, "keys": keys(child_profile(
            name=r.name, gender=r.gender, birth_date=r.birth_date, age=r.age,
            age_given_on=r.age_given_on, address=r.address, jurisdiction=r.jurisdiction_code,
            phones=phones.get(r.id, ()), categories=r.categories or (), id_index=r.id_index,
        ))} for r in rows]

    columns = (Child.name, Child.gender, Child.birth_date, Child.age, Child.age_given_on,
               Child.address, Child.jurisdiction_code, Child.categories, Child.id_index)
    return await _backfill(session, Child, columns, keys_of, batch)


async def guardian_phones(session: AsyncSession, child_ids: list[int]) -> dict[int, list[str]]:
    """The blind indexes of each child's guardians' numbers (what matching compares)."""
    out: dict[int, list[str]] = {}
    rows = await session.execute(
        select(Guardian.child_id, Guardian.phone_index).where(
            Guardian.child_id.in_(child_ids), Guardian.phone_index.is_not(None)
        )
    )
    for child_id, phone in rows:
        out.setdefault(child_id, []).append(phone)
    return out
