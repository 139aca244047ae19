"""The department scorecard (考核): per office and per department over a period.

The figures' definitions are `workflows.supervision`'s; here they are added up. The
period's referrals come as fact rows (`dispatch.supervision.tally`: per department ×
office × place, with their counts and exact minutes to the first claim and action), from
the scheduler's tally of closed UTC days where it is clean and from the live rows for the
rest; here they are summed per office, per department and in all, the minutes merged into
histograms (their medians and 90th percentiles exact to the minute), statuses and return
reasons counted. Small statements add the 督查 orders and what is overdue now (the running-
deadline index). The caller's scope is in every WHERE: a department's supervisor sees only
their department's offices in their place.
"""

from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import accumulate
from typing import Any

from sqlalchemy import and_, case, func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from db import clock
from db.models import TALLY_COUNTS, Office, Referral, SupervisionOrder
from dispatch.console import periods
from dispatch.console.timefmt import local_zone
from dispatch.staff.auth import Principal
from dispatch.staff.scope import referral_filter
from dispatch.supervision import blocks, tally
from dispatch.supervision.access import order_filter
from workflows import supervision as rules
from workflows.reference import department_labels

TOP_REASONS = 5
FRACTIONS = (0.5, 0.9)  # the median and the 90th percentile
_NONE: Counter[int] = Counter()


def today() -> date:
    return clock.now().astimezone(local_zone()).date()


def scorecard_period(since: date | None, until: date | None) -> periods.Period:
    """[since, until] in local days; by default the current quarter up to today."""
    until = until or today()
    if since is None:
        since = date(until.year, 3 * ((until.month - 1) // 3) + 1, 1)
    return periods.days(since, until)


@dataclass
class Scorecard:
    start: datetime
    end: datetime
    by: str  # "office" or "department"
    items: list[dict[str, Any]]
    total: dict[str, Any]
    previous_total: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def _period(column, start: datetime, end: datetime):
    return and_(column >= start, column < end)


COUNTED = TALLY_COUNTS


def _new_row(key: tuple, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "department_code": key[0],
        "office_id": key[1],
        **counts,
        "outcomes": {},
        "return_reasons": [],
        "manual_flagged": 0,
        "overdue": 0,
        "orders_overdue": 0,
        "median_minutes_to_claim": None,
        "p90_minutes_to_claim": None,
        "median_minutes_to_action": None,
        "p90_minutes_to_action": None,
    }


def _keys(department: str, office_id: int | None) -> tuple[tuple, ...]:
    """Where one office's figures add up: itself, its department, the whole scope."""
    return ((department, office_id), (department, None), (None, None))


# Constants written into the SQL, not bound: the partial expression index of migration 0006
# (open referrals by their running deadline) is matched by the planner only against literal
# SQL, as the console's deadline board writes it.
_OPEN = Referral.status.in_((literal_column("'queued'"), literal_column("'claimed'")))
_RUNNING_DUE = case(
    (Referral.status == literal_column("'queued'"), Referral.claim_due_at),
    else_=Referral.action_due_at,
)


async def _now_figures(
    session: AsyncSession, principal: Principal, now: datetime
) -> dict[tuple[str, int | None], dict[str, int]]:
    """What is overdue at this moment, per (department, office): referrals waiting past
    their running deadline (queued: to claim; claimed: to act) and open 督查 orders past
    their rectification deadline. Not a period's figure: counted once for both periods."""
    figures: dict[tuple[str, int | None], dict[str, int]] = {}
    overdue = (
        select(Referral.department_code, Referral.office_id, func.count())
        .where(
            _OPEN,
            _RUNNING_DUE < now,
            Referral.office_id.is_not(None),
            referral_filter(principal),
        )
        .group_by(Referral.department_code, Referral.office_id)
    )
    for dept, office_id, n in await session.execute(overdue):
        figures.setdefault((dept, office_id), {"overdue": 0, "orders_overdue": 0})["overdue"] = n
    late_orders = (
        select(SupervisionOrder.department_code, SupervisionOrder.office_id, func.count())
        .where(
            SupervisionOrder.status == "open",
            SupervisionOrder.due_at < now,
            order_filter(principal),
        )
        .group_by(SupervisionOrder.department_code, SupervisionOrder.office_id)
    )
    for dept, office_id, n in await session.execute(late_orders):
        row = figures.setdefault((dept, office_id), {"overdue": 0, "orders_overdue": 0})
        row["orders_overdue"] = n
    return figures


async def _count(
    session: AsyncSession,
    principal: Principal,
    start: datetime,
    end: datetime,
    now_figures: dict[tuple[str, int | None], dict[str, int]],
) -> dict[tuple, dict[str, Any]]:
    """Every figure of one period, keyed by (department, office id), (department, None)
    and (None, None) for the whole scope, from the period's facts (`tally.facts`: counted
    days and live rows alike, summed per office) rolled up here."""
    facts = await tally.facts(session, principal, start, end)
    rows: dict[tuple, dict[str, Any]] = {(None, None): _new_row((None, None), _zero())}
    for row in facts.totals:
        for key in _keys(row.department_code, row.office_id):
            data = rows.get(key)
            if data is None:
                data = rows[key] = _new_row(key, _zero())
            for name in COUNTED:
                data[name] += int(getattr(row, name))
            outcomes = data["outcomes"]
            outcomes[row.status] = outcomes.get(row.status, 0) + int(row.received)
            if row.status == "returned":
                reason = row.return_reason or "（未填写）"
                data["return_reasons"].append({"reason": reason, "count": int(row.received)})
    for (key, what), value in (await _percentiles(session, principal, facts)).items():
        if key in rows:
            rows[key][f"median_minutes_to_{what}"], rows[key][f"p90_minutes_to_{what}"] = value

    def each(department, office_id):
        for key in _keys(department, office_id):
            if key in rows:
                yield rows[key]

    orders = (
        select(SupervisionOrder.department_code, SupervisionOrder.office_id, func.count())
        .where(_period(SupervisionOrder.opened_at, start, end), order_filter(principal))
        .group_by(SupervisionOrder.department_code, SupervisionOrder.office_id)
    )
    for dept, office_id, n in await session.execute(orders):
        _ensure(rows, dept, office_id)
        for target in each(dept, office_id):
            target["manual_flagged"] += n

    for key, figures in now_figures.items():
        _ensure(rows, *key)
        for name, n in figures.items():
            for target in each(*key):
                target[name] += n

    for data in rows.values():
        data["flagged"] = data["auto_flagged"] + data["manual_flagged"]
        data["overdue"] += data["orders_overdue"]
        data["claimed_on_time_rate"] = rules.rate(data["claimed_on_time"], data["received"])
        data["acted_on_time_rate"] = rules.rate(data["acted_on_time"], data["received"])
        merged: dict[str, int] = {}
        for reason in data["return_reasons"]:  # a department's offices may give the same one
            merged[reason["reason"]] = merged.get(reason["reason"], 0) + reason["count"]
        data["return_reasons"] = [
            {"reason": text, "count": n}
            for text, n in sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_REASONS]
        ]
    return rows


def _histograms(rows, suffix: str = "") -> dict[tuple, Counter[int]]:
    """{(key, what): {value: how many}} for each office, its department and the whole
    scope (a department's and the scope's are the sums of their offices')."""
    into: dict[tuple, Counter[int]] = {}
    for row in rows:
        counted = dict(zip(row.minutes, row.counts, strict=True))
        what = row.what.removesuffix(suffix)
        for key in _keys(row.department_code, row.office_id):
            into.setdefault((key, what), Counter()).update(counted)
    return into


async def _percentiles(
    session: AsyncSession, principal: Principal, facts: tally.Facts
) -> dict[tuple, tuple[float | None, float | None]]:
    """{(key, what): (median, p90)} exact to the minute. Minutes held exactly are counted
    as they are; the blocks' are counted per bucket, and only the buckets holding the
    ranks that percentile_cont reads are then read exactly (`blocks.exact`)."""
    exact = _histograms(facts.exact)
    bucketed = _histograms(facts.buckets, "_buckets")
    out: dict[tuple, tuple[float | None, float | None]] = {}
    plans: dict[tuple, tuple[list[int], list[int], set[int]]] = {}
    for key_what in exact.keys() | bucketed.keys():
        counts = exact.get(key_what, _NONE)
        if key_what not in bucketed:
            out[key_what] = (rules.percentile(counts, 0.5), rules.percentile(counts, 0.9))
            continue
        merged = Counter(bucketed[key_what])
        for value, n in counts.items():
            merged[blocks.bucket(value)] += n
        order = sorted(merged)
        ends = list(accumulate(merged[b] for b in order))
        wanted = {
            order[bisect_right(ends, rank)]
            for fraction in FRACTIONS
            for rank in rules.percentile_ranks(ends[-1], fraction)
        }
        plans[key_what] = (order, ends, wanted)
    needs = {(*key_what, b) for key_what, (_, _, wanted) in plans.items() for b in wanted}
    found = await blocks.exact(session, principal, facts.blocks, needs)
    for key_what, (order, ends, wanted) in plans.items():
        for value, n in exact.get(key_what, _NONE).items():  # the exact ones join them
            b = blocks.bucket(value)
            if b in wanted:
                found[(*key_what, b)][value] += n

        def value_at(rank: int, key_what=key_what, order=order, ends=ends) -> int:
            i = bisect_right(ends, rank)
            within = found[(*key_what, order[i])]
            return rules.value_at_rank(within, rank - (ends[i - 1] if i else 0))

        out[key_what] = tuple(  # type: ignore[assignment]
            rules.percentile_of(value_at, ends[-1], fraction) for fraction in FRACTIONS
        )
    return out


def _zero() -> dict[str, int]:
    return dict.fromkeys(COUNTED, 0)


def _ensure(rows: dict[tuple, dict[str, Any]], dept: str, office_id: int | None) -> None:
    """An office with orders or overdue work but nothing received in the period still shows."""
    for key in _keys(dept, office_id):
        if key not in rows:
            rows[key] = _new_row(key, dict.fromkeys(COUNTED, 0))


async def scorecard(
    session: AsyncSession,
    principal: Principal,
    start: datetime,
    end: datetime,
    *,
    by: str = "office",
    now: datetime,
) -> Scorecard:
    """The scorecard of [start, end) in the principal's scope, ranked, with the trend
    against the period of the same length just before."""
    # The live part of a period (a quarter, before the tally has counted it) is grouped in
    # memory, not in an external merge sort on disk. JIT is off for every connection
    # (db.engine).
    await session.execute(text("SET LOCAL work_mem = '64MB'"))
    # The tables are in memory: a read by index costs about what a sequential one does. At
    # the default (4) the planner scans all of referral_measure (200,000 rows, 80 ms) to
    # join the few thousand referrals of the period's live part (18 ms by index).
    await session.execute(text("SET LOCAL random_page_cost = 1.1"))
    now_figures = await _now_figures(session, principal, now)
    current = await _count(session, principal, start, end, now_figures)
    before_start, before_end = rules.previous_span(start, end)
    previous = await _count(session, principal, before_start, before_end, now_figures)
    offices = {
        o.id: o
        for o in (
            await session.execute(
                select(Office).where(Office.id.in_({k[1] for k in current if k[1] is not None}))
            )
        ).scalars()
    }
    names = department_labels()
    items = []
    for key, data in current.items():
        department, office_id = key
        if department is None or (by == "office") != (office_id is not None):
            continue
        office = offices.get(office_id) if office_id else None
        item = _item(data, department, office, names)
        item["key"] = f"{department}:{office_id or ''}"
        item["previous"] = _brief(previous.get(key))
        item["trend"] = rules.trend(item, item["previous"])
        items.append(item)
    items = rules.rank(items)
    total = _item(current.get((None, None)) or _blank(), None, None, names)
    previous_total = _brief(previous.get((None, None)))
    total["trend"] = rules.trend(total, previous_total)
    return Scorecard(start, end, by, items, total, previous_total)


def _blank() -> dict[str, Any]:
    rows: dict[tuple, dict[str, Any]] = {}
    _ensure(rows, "", None)
    data = rows[(None, None)]
    data.update(flagged=0, claimed_on_time_rate=None, acted_on_time_rate=None)
    return data


def _item(data: dict[str, Any], department: str | None, office, names) -> dict[str, Any]:
    return {
        "department": department,
        "department_name": names.get(department, department) if department else "合计",
        "office": office.name if office else None,
        "office_id": office.id if office else None,
        "jurisdiction": office.jurisdiction_code if office else None,
        "received": data["received"],
        "claimed": data["claimed"],
        "claimed_on_time": data["claimed_on_time"],
        "acted_on_time": data["acted_on_time"],
        "claimed_on_time_rate": data["claimed_on_time_rate"],
        "acted_on_time_rate": data["acted_on_time_rate"],
        "median_minutes_to_claim": data["median_minutes_to_claim"],
        "p90_minutes_to_claim": data["p90_minutes_to_claim"],
        "median_minutes_to_action": data["median_minutes_to_action"],
        "p90_minutes_to_action": data["p90_minutes_to_action"],
        "escalated": data["escalated"],
        "flagged": data["flagged"],
        "flagged_by_hand": data["manual_flagged"],
        "returned": data["returned"],
        "return_reasons": data["return_reasons"],
        "outcomes": data["outcomes"],
        "overdue": data["overdue"],
    }


def _brief(data: dict[str, Any] | None) -> dict[str, Any] | None:
    if data is None:
        return None
    return {field: data.get(field) for field in rules.TREND_FIELDS}
