"""The scorecard's facts of a period: the tally of closed UTC days where it is clean, the
live rows for everything else, in one shape.

A fact row is one department × office × the referral's place × the case's place × status ×
return reason, with the counts the scorecard adds up and the exact minutes to the first
claim and to the first action (arrays: the median and 90th percentile need every value, and
a day's minutes hardly repeat, so a histogram row per minute would be as many rows as
referrals). The scheduler's pass (`build`) writes closed days' rows;
`facts` reads them for the days of a period still clean, and computes the rest (the partial
first and last days, today, days not yet counted, days touched since) from `referral`, so
the figures are the live ones whatever the tally holds.

A day is touched when a timeline event (`case_event`) of one of its referrals' cases was
written after the day was last checked (counted, or found untouched by a pass), less
`DIRTY_MARGIN`: every change to a referral, to its
measures (the timeline trigger) or to its case's place comes with an event in the same
transaction, stamped with that transaction's clock; the margin covers a transaction that
began before the count and committed after it.
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Date,
    Integer,
    String,
    and_,
    cast,
    delete,
    false,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from db.models import (
    TALLY_COUNTS,
    Case,
    CaseEvent,
    Referral,
    ReferralMeasure,
    scorecard_block_tally,
    scorecard_day,
    scorecard_tally,
)
from dispatch.staff.auth import Principal
from dispatch.staff.scope import referral_filter, tallied_referral_filter
from dispatch.supervision import blocks

DIRTY_MARGIN = timedelta(minutes=10)
BATCH_DAYS = 31  # days (re)counted per pass: a first pass over a long history is spread out
LOCK = 0x5C0AEC  # pg advisory lock: one scheduler counts at a time
_EMPTY = literal_column("'{}'::integer[]")


def minutes(later, earlier):
    """Whole minutes between two moments (NULL when `later` is): the scorecard's unit."""
    return func.round(func.extract("epoch", later - earlier) / 60.0)


def _utc_day(column):
    return cast(func.timezone("UTC", column), Date)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _counts_columns():
    r, m = Referral, ReferralMeasure
    to_claim = cast(minutes(m.first_claimed_at, r.created_at), Integer)
    to_act = cast(minutes(m.first_acted_at, r.created_at), Integer)
    return (
        func.count().label("received"),
        func.count(m.first_claimed_at).label("claimed"),
        func.count().filter(m.claimed_on_time.is_(True)).label("claimed_on_time"),
        func.count().filter(m.acted_on_time.is_(True)).label("acted_on_time"),
        func.count(m.escalated_at).label("escalated"),
        func.count(m.flagged_at).label("auto_flagged"),
        func.count().filter(r.status == "returned").label("returned"),
        func.coalesce(
            func.array_agg(to_claim).filter(m.first_claimed_at.is_not(None)), _EMPTY
        ).label("claim_minutes"),
        func.coalesce(
            func.array_agg(to_act).filter(m.first_acted_at.is_not(None)), _EMPTY
        ).label("act_minutes"),
    )


def _facts_statement(where, *head, with_case: bool):
    """Fact rows of the referrals `where` picks, one per department × office × place ×
    status × return reason. With `with_case` (the tally), the case's place is a key too;
    the live read has its scope in `where` and needs it not (NULL)."""
    r = Referral
    grouped = [r.department_code, r.office_id, r.jurisdiction_code, r.status, r.return_reason]
    stmt = select().select_from(r)
    if with_case:
        # Not `Case`: a scope filter's own subquery on hcase must not correlate with it.
        case = aliased(Case)
        stmt = stmt.join(case, case.id == r.case_id)
        case_place = case.jurisdiction_code
        grouped.append(case_place)
    else:
        case_place = null()
    return (
        stmt.add_columns(
            *head,
            r.department_code,
            r.office_id,
            r.jurisdiction_code,
            case_place.label("case_jurisdiction"),
            r.status,
            r.return_reason,
            *_counts_columns(),
        )
        .outerjoin(ReferralMeasure, ReferralMeasure.referral_id == r.id)
        .where(r.office_id.is_not(None), where)
        .group_by(*grouped)
    )


# --- the scheduler's pass ----------------------------------------------------------------


async def _touched(session: AsyncSession, counted: dict[date, datetime]) -> set[date]:
    """Counted days with a timeline event on one of their referrals' cases since they were
    last checked (less the margin)."""
    looked = sorted(counted)
    if not looked:
        return set()
    since = min(counted[d] for d in looked) - DIRTY_MARGIN
    day = _utc_day(Referral.created_at)
    stmt = (
        select(day, func.max(CaseEvent.created_at))
        .select_from(CaseEvent)
        .join(Referral, Referral.case_id == CaseEvent.case_id)
        .where(
            CaseEvent.created_at >= since,
            Referral.created_at >= day_start(looked[0]),
            Referral.created_at < day_start(looked[-1] + timedelta(days=1)),
        )
        .group_by(day)
    )
    return {
        d
        for d, last in await session.execute(stmt)
        if d in counted and last >= counted[d] - DIRTY_MARGIN
    }


async def count_day(session: AsyncSession, day: date) -> None:
    """(Re)count one closed UTC day: its rows replaced, checked as of the transaction's
    start (what it saw was committed by then, or is within the margin)."""
    where = and_(
        Referral.created_at >= day_start(day),
        Referral.created_at < day_start(day + timedelta(days=1)),
    )
    await blocks.drop(session, day)
    await session.execute(delete(scorecard_tally).where(scorecard_tally.c.day == day))
    facts = _facts_statement(where, literal(day, Date).label("day"), with_case=True)
    await session.execute(
        insert(scorecard_tally).from_select([c.name for c in facts.selected_columns], facts)
    )
    upsert = pg_insert(scorecard_day).values(day=day, checked_at=func.now())
    await session.execute(
        upsert.on_conflict_do_update(index_elements=["day"], set_={"checked_at": func.now()})
    )


async def build(session: AsyncSession, now: datetime, limit: int = BATCH_DAYS) -> list[date]:
    """One pass: count the closed days touched since they were counted, then the closed days
    never counted (newest first), at most `limit` in all. Idempotent; several schedulers
    take turns (an advisory lock), the one without it does nothing."""
    if not await session.scalar(select(func.pg_try_advisory_xact_lock(LOCK))):
        return []
    first = await session.scalar(select(func.min(Referral.created_at)))
    if first is None:
        return []
    today = now.astimezone(UTC).date()
    counted = {d: at for d, at in await session.execute(select(scorecard_day))}
    touched = await _touched(session, counted)
    # The others are clean as of this pass: from now on, events are looked for from here
    # (less the margin), a short range of the index, not from when each day was counted.
    await session.execute(
        update(scorecard_day)
        .where(scorecard_day.c.day.not_in(touched))
        .values(checked_at=func.now())
    )
    todo = sorted(touched)
    day = today - timedelta(days=1)
    oldest = first.astimezone(UTC).date()
    while day >= oldest and len(todo) < limit:
        if day not in counted:
            todo.append(day)
        day -= timedelta(days=1)
    todo = todo[:limit]
    for day in todo:
        await count_day(session, day)
    await blocks.build(session, today, set(counted) | set(todo))
    return todo


# --- the scorecard's read ----------------------------------------------------------------


def _spans(
    start: datetime, end: datetime, clean: Sequence[date]
) -> list[tuple[datetime, datetime]]:
    """[start, end) less the clean days (sorted), as half-open spans."""
    spans, at = [], start
    for day in clean:
        lo, hi = day_start(day), day_start(day + timedelta(days=1))
        if lo > at:
            spans.append((at, lo))
        at = max(at, hi)
    if at < end:
        spans.append((at, end))
    return spans


class Facts(NamedTuple):
    """A period's figures as `facts` reads them (see there)."""

    totals: list[Any]
    exact: list[Any]  # what, department, office, minutes, counts: exact histograms
    buckets: list[Any]  # what, department, office, minutes (buckets), counts: the blocks'
    blocks: list[date]  # the blocks read (their first days), for `blocks.exact`


async def facts(
    session: AsyncSession, principal: Principal, start: datetime, end: datetime
) -> Facts:
    """The period's figures in the principal's scope, tallied for its whole UTC days counted
    and untouched since, live for the rest, added up in one statement: per department ×
    office × status × return reason the counts, and per department × office the minutes to
    the first claim ("claim") and to the first action ("action") as (values, how many),
    exact, but for the blocks (`dispatch.supervision.blocks`) whose days are all clean:
    their minutes as (buckets, how many), read exactly by bucket when asked."""
    first = (start.astimezone(UTC) + timedelta(days=1) - timedelta(microseconds=1)).date()
    after = end.astimezone(UTC).date()  # whole days are [first, after)
    clean: list[date] = []
    if first < after:
        window = select(scorecard_day).where(
            scorecard_day.c.day >= first, scorecard_day.c.day < after
        )
        counted = {d: at for d, at in await session.execute(window)}
        touched = await _touched(session, counted)
        clean = sorted(d for d in counted if d not in touched)
    spans_blocks: list[tuple[date, date]] = []
    # Blocks are read in two statements: no pass may rebuild one in between. While a pass
    # runs (it holds the lock), the day rows are read instead.
    if clean and await session.scalar(select(func.pg_try_advisory_xact_lock_shared(LOCK))):
        spans_blocks = await blocks.usable(session, first, after, set(clean))
    in_blocks = {lo + timedelta(days=n) for lo, hi in spans_blocks for n in range((hi - lo).days)}
    parts = []
    spans = _spans(start, end, clean)
    if spans:
        live = and_(
            or_(
                false(),
                *(and_(Referral.created_at >= lo, Referral.created_at < hi) for lo, hi in spans),
            ),
            referral_filter(principal),
        )
        parts.append(_facts_statement(live, with_case=False))
    days = [d for d in clean if d not in in_blocks]
    if days:
        parts.append(_tallied(principal, scorecard_tally, scorecard_tally.c.day.in_(days)))
    if spans_blocks:
        block_tally = scorecard_block_tally
        chosen = block_tally.c.block.in_([lo for lo, _ in spans_blocks])
        parts.append(_tallied(principal, block_tally, chosen))
    # One statement: the facts are read once (a CTE used three times is materialized) and
    # added up three ways; a few hundred rows come back, not one per counted day and place.
    rows = (union_all(*parts) if len(parts) > 1 else parts[0]).cte("facts")
    keys = (rows.c.department_code, rows.c.office_id)
    no_minutes = (
        cast(null(), ARRAY(Integer)).label("minutes"),
        cast(null(), ARRAY(BigInteger)).label("counts"),
    )
    branches = [
        select(
            literal("counts").label("what"),
            *keys,
            rows.c.status,
            rows.c.return_reason,
            *(func.sum(rows.c[name]).label(name) for name in TALLY_COUNTS),
            *no_minutes,
        ).group_by(*keys, rows.c.status, rows.c.return_reason)
    ]
    for what, column in (("claim", rows.c.claim_minutes), ("action", rows.c.act_minutes)):
        unnested = func.unnest(column).table_valued("minute").render_derived().lateral()
        each = (
            select(*keys, unnested.c.minute, func.count().label("n"))
            .select_from(rows)
            .join(unnested, true())
            .group_by(*keys, unnested.c.minute)
            .subquery()
        )
        branches.append(_histograms(literal(what), each, each.c.minute))
    if spans_blocks:
        each = blocks.bucket_counts(principal, [lo for lo, _ in spans_blocks]).subquery()
        what = each.c.what.concat("_buckets")
        branches.append(_histograms(what, each, cast(each.c.bucket, Integer), each.c.what))
    result = (await session.execute(union_all(*branches))).all()
    return Facts(
        totals=[row for row in result if row.what == "counts"],
        exact=[row for row in result if row.what in ("claim", "action")],
        buckets=[row for row in result if row.what.endswith("_buckets")],
        blocks=[lo for lo, _ in spans_blocks],
    )


def _tallied(principal: Principal, table, where):
    """Counted rows in the principal's scope, in the live facts' columns (a block's minutes
    are in `blocks`, not here)."""
    t = table.c
    scope = tallied_referral_filter(
        principal, t.department_code, t.jurisdiction_code, t.case_jurisdiction
    )
    keys = ("department_code", "office_id", "jurisdiction_code", "case_jurisdiction")
    columns = [t[name] for name in (*keys, "status", "return_reason", *TALLY_COUNTS)]
    for name in ("claim_minutes", "act_minutes"):
        columns.append(t[name] if name in t else _EMPTY.label(name))
    return select(*columns).where(where, scope)


def _histograms(what, each, value, *group):
    """Per department × office (× `group`) of `each`'s (value, n) rows: (values, how
    many), ascending."""
    keys = (each.c.department_code, each.c.office_id)
    return select(
        what,
        *keys,
        cast(null(), String),
        cast(null(), String),
        *(cast(null(), BigInteger) for _ in TALLY_COUNTS),
        func.array_agg(aggregate_order_by(value, value)),
        func.array_agg(aggregate_order_by(each.c.n, value)),
    ).group_by(*keys, *group)
