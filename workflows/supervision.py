"""Supervision's rules: what the scorecard's figures mean, the ranking of the 通报, the
lifecycles of a 督查 order and of a periodic report, reporting periods and their due dates.

Pure: no database, no clock. The figures themselves are counted in SQL
(`dispatch.supervision.service`); their definitions live here, once, in words and code:

- received: referrals that reached an office (were queued there) in the period;
- claimed: of those, claimed at some time; claimed on time: first claim at or before the
  claim deadline in force at that moment (risk level's window, working days);
- acted on time: first action (a progress note or the completion) at or before the action
  deadline in force then; a return is not an action;
- minutes to claim / to first action: from reaching the office to the first claim / action,
  median and 90th percentile over those that happened;
- escalated (督办): received referrals that passed a deadline at least once;
- flagged (挂牌督办): received referrals flagged at twice a window, plus 督查 orders opened
  by hand in the period on the office's cases and referrals;
- returned: received referrals returned, with their reasons;
- outcomes: received referrals by their status now;
- overdue now: the office's referrals waiting past a deadline at this moment (any period),
  and its 督查 orders open past their rectification deadline.
Rates are over received; the trend compares with the period of the same length just before.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from workflows import config
from workflows.errors import WorkflowRefused

ORDER_STATUS_LABELS = {"open": "整改中", "answered": "已反馈待审核", "lifted": "已解除"}
ORDER_EVENT_LABELS = {"answer": "反馈整改情况", "send_back": "退回重新整改", "lift": "解除督办"}
_ORDER_MOVES = {
    "answer": ({"open"}, "answered", "请填写整改情况"),
    "send_back": ({"answered"}, "open", "请填写退回意见"),
    "lift": ({"answered"}, "lifted", "请填写解除意见"),
}

# The timeline entries supervision writes (the console shows them on a case's timeline).
TIMELINE_LABELS = {
    "supervision_ordered": "挂牌督办（督查）",
    "supervision_answered": "整改反馈",
    "supervision_sent_back": "整改退回",
    "supervision_lifted": "解除督办",
    "supervision_overdue": "整改逾期督办",
    "supervision_escalated": "整改严重逾期",
    "key_case_flagged": "列为重点个案",
    "key_case_cleared": "撤销重点个案",
    "key_case_minute": "领导会议纪要",
    "supervision_note": "个案督导",
}

REPORT_STATUS_LABELS = {
    "draft": "草稿",
    "reviewed": "已审核",
    "submitted": "已报送",
    "acknowledged": "市级已确认",
    "returned": "市级已退回",
}
REPORT_EVENT_LABELS = {
    "review": "审核",
    "submit": "报送",
    "acknowledge": "确认",
    "return": "退回",
}
_REPORT_MOVES = {
    "review": ({"draft", "returned"}, "reviewed", None),
    "submit": ({"reviewed"}, "submitted", None),
    "acknowledge": ({"submitted"}, "acknowledged", None),
    "return": ({"submitted"}, "returned", "退回需要填写意见"),
}
REPORT_EDITABLE = ("draft", "reviewed", "returned")
REPORT_SENT = ("submitted", "acknowledged")


def _move(moves: dict, labels: dict, events: dict, status: str, event: str, text: str | None):
    if event not in moves:
        raise WorkflowRefused("unknown_event", f"未知的操作「{event}」")
    sources, target, missing = moves[event]
    if status not in sources:
        raise WorkflowRefused(
            "transition_not_allowed",
            f"当前状态「{labels.get(status, status)}」不允许「{events[event]}」",
        )
    if missing and not (text and text.strip()):
        raise WorkflowRefused("reason_required", missing)
    return target


def apply_order_event(status: str, event: str, text: str | None = None) -> str:
    """A 督查 order's next status: the department answers what it did, the supervisor lifts
    the order or sends it back; every step needs its words. WorkflowRefused otherwise."""
    return _move(_ORDER_MOVES, ORDER_STATUS_LABELS, ORDER_EVENT_LABELS, status, event, text)


def apply_report_event(status: str, event: str, comment: str | None = None) -> str:
    """A periodic report: 审核 (draft or returned) → 报送 → the city acknowledges or returns
    it with comments. WorkflowRefused for anything else."""
    return _move(_REPORT_MOVES, REPORT_STATUS_LABELS, REPORT_EVENT_LABELS, status, event, comment)


# --- 督查 deadlines: overdue rectifications escalate like referrals -------------------------

ORDER_OVERDUE, ORDER_FLAGGED = 1, 2


def order_stage(opened_at: datetime, due_at: datetime, now: datetime) -> int:
    """0 within the deadline, 1 past it (督办), 2 past twice the window (挂牌, to the city)."""
    if now >= due_at + (due_at - opened_at):
        return ORDER_FLAGGED
    if now >= due_at:
        return ORDER_OVERDUE
    return 0


def order_next_check(opened_at: datetime, due_at: datetime, stage: int) -> datetime | None:
    points = [due_at, due_at + (due_at - opened_at)]
    return points[stage] if stage < len(points) else None


def check_order_deadline(opened_at: datetime, due_at: datetime) -> None:
    days = config.supervision().orders.max_days
    if due_at <= opened_at:
        raise WorkflowRefused("bad_deadline", "整改期限必须晚于现在")
    if due_at - opened_at > timedelta(days=days):
        raise WorkflowRefused("bad_deadline", f"整改期限最长为{days}天")


# --- scorecard ---------------------------------------------------------------------------

RATE_FIELDS = ("claimed_on_time", "acted_on_time")
PER_REFERRAL_FIELDS = ("escalated", "flagged", "returned", "overdue")
TREND_FIELDS = (
    "received",
    "claimed_on_time_rate",
    "acted_on_time_rate",
    "median_minutes_to_claim",
    "escalated",
    "flagged",
    "returned",
)


def percentile_ranks(total: int, fraction: float) -> tuple[int, ...]:
    """The 0-based ranks PostgreSQL's percentile_cont reads among `total` sorted values:
    one, or two to interpolate between."""
    position = fraction * (total - 1)
    low = int(position)
    return (low, low + 1) if position > low else (low,)


def percentile_of(value_at: Callable[[int], int], total: int, fraction: float) -> float | None:
    """percentile_cont from the values at its ranks (`value_at(rank)`), so a caller may
    find them without holding every value (the scorecard's bucketed minutes)."""
    if not total:
        return None
    position = fraction * (total - 1)
    share = position - int(position)
    low, *high = (value_at(rank) for rank in percentile_ranks(total, fraction))
    return round(low + ((high[0] if high else low) - low) * share, 1)


def value_at_rank(counts: dict[int, int], rank: int) -> int:
    """The value at a 0-based rank among values given as {value: how many}."""
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen > rank:
            return value
    raise IndexError(rank)


def percentile(counts: dict[int, int], fraction: float) -> float | None:
    """PostgreSQL's percentile_cont over values given as {value: how many}: the figures
    are counted as a histogram of whole minutes (a hash aggregate, not a sort per group)."""
    total = sum(counts.values())
    return percentile_of(lambda rank: value_at_rank(counts, rank), total, fraction)


def rate(part: int, whole: int) -> float | None:
    """A share rounded to 0.1 %; None when there was nothing to measure."""
    return round(part / whole, 4) if whole else None


def score(row: dict[str, Any]) -> float | None:
    """The ranking score of one office (config [scorecard] weights); None when unranked."""
    cfg = config.supervision().scorecard
    received = row["received"]
    if received < cfg.min_received_to_rank:
        return None
    weights = cfg.weights
    total = 0.0
    for field in RATE_FIELDS:
        total += weights.get(field, 0) * (row[field] / received)
    for field in PER_REFERRAL_FIELDS:
        total += weights.get(field, 0) * (row[field] / received)
    return round(total, 2)


def rank(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with `score` and `rank` (1 best; equal scores share a rank; unranked last)."""
    for row in rows:
        row["score"] = score(row)
    ranked = sorted(
        rows,
        key=lambda r: (r["score"] is None, -(r["score"] or 0), -r["received"], r["key"]),
    )
    place, last = 0, None
    for index, row in enumerate(ranked, start=1):
        if row["score"] is None:
            row["rank"] = None
            continue
        if row["score"] != last:
            place, last = index, row["score"]
        row["rank"] = place
    return ranked


def trend(current: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """Change against the previous period, field by field (None where either is missing)."""
    out: dict[str, Any] = {}
    for field in TREND_FIELDS:
        now, before = current.get(field), (previous or {}).get(field)
        out[field] = None if now is None or before is None else round(now - before, 4)
    return out


def previous_span(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    return start - (end - start), start


# --- reporting periods -------------------------------------------------------------------

KINDS = {"month": "月报", "quarter": "季报", "half": "半年报", "year": "年报"}
_PATTERNS = (
    ("month", re.compile(r"(\d{4})-(0[1-9]|1[0-2])")),
    ("quarter", re.compile(r"(\d{4})Q([1-4])")),
    ("half", re.compile(r"(\d{4})H([12])")),
    ("year", re.compile(r"(\d{4})")),
)


@dataclass(frozen=True)
class ReportPeriod:
    code: str
    kind: str
    first: date
    after: date  # the day after the last
    label: str

    @property
    def last(self) -> date:
        return self.after - timedelta(days=1)

    @property
    def due(self) -> date:
        """The day the city expects the districts' reports by (config [reports] due_days)."""
        days = config.supervision().reports.due_days[self.kind]
        return self.last + timedelta(days=days)


def _month_start(year: int, month: int) -> date:
    return date(year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def parse_period(code: str) -> ReportPeriod:
    """2026-07 (月), 2026Q3 (季), 2026H1 (半年), 2026 (年); WorkflowRefused otherwise."""
    for kind, pattern in _PATTERNS:
        match = pattern.fullmatch(code or "")
        if not match:
            continue
        year = int(match.group(1))
        if not 2000 <= year <= 2100:
            break
        part = int(match.group(2)) if kind != "year" else 1
        months = {"month": 1, "quarter": 3, "half": 6, "year": 12}[kind]
        first = _month_start(year, (part - 1) * months + 1)
        after = _month_start(year, part * months + 1)
        label = {
            "month": f"{year}年{part}月",
            "quarter": f"{year}年第{part}季度",
            "half": f"{year}年{'上' if part == 1 else '下'}半年",
            "year": f"{year}年",
        }[kind]
        return ReportPeriod(code, kind, first, after, label)
    raise WorkflowRefused(
        "bad_period", "报告期格式应为 2026-07（月）、2026Q3（季）、2026H1（半年）或 2026（年）"
    )


# The sexes a report counts (what intake and the case's correction accept as gender).
SEXES = ("male", "female", "unknown")
# What a case keeps in plain of its child (hcase.child_age, smallint): an age beyond it is
# no age any band holds.
_AGE_MAX = 32767


def age_years(age: Any) -> int | None:
    """The age in years a report gave (a whole number, or its digits), as the age band reads
    it; None when it gave none."""
    if not isinstance(age, int) and not (isinstance(age, str) and age.isdigit()):
        return None
    try:
        years = int(age)
    except ValueError:  # digits int() does not read (superscripts)
        return None
    return years if -_AGE_MAX <= years <= _AGE_MAX else None


def age_bands() -> list[tuple[int, int, str]]:
    """The configured bands: [low, high) in years and the label."""
    return list(config.supervision().reports.age_bands)


def band_of(years: int | None) -> str:
    """The configured band of an age in years; 未填写 when unknown or in no band."""
    if years is not None:
        for low, high, label in age_bands():
            if low <= years < high:
                return label
    return "未填写"


def age_band(age: Any) -> str:
    """The configured band of an age in years; 未填写 when unknown."""
    return band_of(age_years(age))


def child_figures(child: dict | None) -> tuple[int | None, str | None]:
    """What a case keeps in plain of its first report's child, for the periodic report's
    age band and sex (hcase.child_age, hcase.child_sex): the age in years and the sex, never
    the name. Written at intake, at a correction of the child and by migration 0036."""
    child = child if isinstance(child, dict) else {}
    sex = child.get("gender")
    return age_years(child.get("age")), sex if isinstance(sex, str) and sex in SEXES else None


CASE_SETS = (
    "received",
    "classified",
    "assessed",
    "intervened",
    "needing_help",
    "helped",
    "closed",
)


@dataclass(frozen=True)
class RateDefinition:
    key: str
    label: str
    numerator: str
    denominator: str


def rate_definitions() -> list[RateDefinition]:
    """The plans' rates (排查分类率, 干预率, 救助率) as the deployment defines them."""
    out = []
    for key, spec in config.supervision().rates.items():
        for side in ("numerator", "denominator"):
            if getattr(spec, side) not in CASE_SETS:
                raise ValueError(
                    f"supervision.toml [rates.{key}] {side}: {getattr(spec, side)!r} is not one of "
                    + ", ".join(CASE_SETS)
                )
        out.append(RateDefinition(key, spec.label, spec.numerator, spec.denominator))
    return out
