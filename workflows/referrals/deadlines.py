"""Risk-level policy (risk.toml) and deadline arithmetic on the Chinese working-day calendar.

Windows are written "30m", "4h", "7d" (elapsed time, around the clock: a red case does not
wait for the morning) or "3wd" (working days, for the levels that may wait for office hours).

Working days come from `workflows.holidays` (chinese_calendar's public holidays and 调休
working weekends, overridden and extended by the deployment's holidays.toml). N working days
end at the same local clock time on the Nth working day after the start's day. A start on a
non-working day first moves to the working-day start time (`working_day_starts`, 09:00) of
the next working day, so 1wd from an ordinary Saturday starts Monday 09:00 and ends Tuesday
09:00. For a year known to neither source Monday to Friday count as working days, so the
arithmetic never fails, and the service warns.
"""

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, cast
from zoneinfo import ZoneInfo

from workflows import config
from workflows.config.schema import RiskConfig
from workflows.holidays import is_workday

Unit = Literal["m", "h", "d", "wd"]
_CLOCK_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
_WINDOW = re.compile(r"\s*([1-9]\d*)\s*(m|h|d|wd)\s*")


@dataclass(frozen=True)
class Window:
    amount: int
    unit: Unit


@dataclass(frozen=True)
class RiskPolicy:
    level: str
    label: str
    claim: Window
    action: Window
    visit: Window


@dataclass(frozen=True)
class DeadlinePoints:
    warn_at: datetime
    due_at: datetime
    flag_at: datetime  # 挂牌督办


# The escalation stages a referral's phase or a task reaches: warned, 督办, 挂牌督办.
WARNED, ESCALATED, FLAGGED = 1, 2, 3


def stage_at(points: DeadlinePoints, now: datetime) -> int:
    """The stage reached by `now` (0: none yet). Anything with the three points will do:
    a referral's phase and a casework task escalate by the same rule."""
    if now >= points.flag_at:
        return FLAGGED
    if now >= points.due_at:
        return ESCALATED
    if now >= points.warn_at:
        return WARNED
    return 0


def parse_window(text: str) -> Window:
    """Parse "30m", "4h", "7d" or "3wd"; ValueError for anything else, zero included."""
    match = _WINDOW.fullmatch(text)
    if not match:
        raise ValueError(f"not a window: {text!r} (use e.g. 30m, 4h, 7d, 3wd)")
    return Window(int(match.group(1)), cast(Unit, match.group(2)))


def _config() -> RiskConfig:
    return config.risk()


def levels() -> list[str]:
    """The levels this deployment uses, most urgent first."""
    return list(_config().levels)


def policy(level: str) -> RiskPolicy:
    """The level's windows; ValueError for a level this deployment does not use."""
    if level not in levels():
        raise ValueError(f"unknown risk level {level!r}; configured: {', '.join(levels())}")
    rules = _config().rules(level)
    return RiskPolicy(
        level=level,
        label=rules.label,
        claim=parse_window(rules.claim),
        action=parse_window(rules.action),
        visit=parse_window(rules.visit),
    )


class _Labels(Mapping[str, str]):
    """Read through to the config, so a deployment's levels and a test's override show."""

    def __getitem__(self, level: str) -> str:
        if level not in levels():
            raise KeyError(level)
        return _config().rules(level).label

    def __iter__(self) -> Iterator[str]:
        return iter(levels())

    def __len__(self) -> int:
        return len(levels())


LEVEL_LABELS: Mapping[str, str] = _Labels()


def _next_workday(day: date, step: int = 1) -> date:
    day += timedelta(days=step)
    while not is_workday(day):
        day += timedelta(days=step)
    return day


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("deadlines need timezone-aware datetimes")
    return moment


def _clock_starts(start: datetime) -> datetime:
    """The local moment a working-day window starts counting from (see module docstring)."""
    local = _aware(start).astimezone(ZoneInfo(_config().timezone))
    if is_workday(local.date()):
        return local
    opens = time.fromisoformat(_config().working_day_starts)
    return datetime.combine(_next_workday(local.date()), opens, tzinfo=local.tzinfo)


def _elapsed(start: datetime, span: timedelta) -> datetime:
    """Real elapsed time (through UTC, so a DST change would not bend it), in start's zone."""
    return (_aware(start).astimezone(UTC) + span).astimezone(start.tzinfo)


def add_window(start: datetime, window: Window) -> datetime:
    """The end of `window` from `start` (aware); the result is in start's timezone."""
    if window.unit in _CLOCK_UNITS:
        return _elapsed(start, _CLOCK_UNITS[window.unit] * window.amount)
    begin = _clock_starts(start)
    day = begin.date()
    for _ in range(window.amount):
        day = _next_workday(day)
    return datetime.combine(day, begin.time(), tzinfo=begin.tzinfo).astimezone(start.tzinfo)


def _working_time_before(due: datetime, span: timedelta) -> datetime:
    """`due` (local, on a working day) minus `span` counted in working days' hours only."""
    day, left = due.date(), due - datetime.combine(due.date(), time(), tzinfo=due.tzinfo)
    while span > left:
        span -= left
        day, left = _next_workday(day, -1), timedelta(days=1)
    return datetime.combine(day, time(), tzinfo=due.tzinfo) + left - span


def deadline_points(start: datetime, window: Window) -> DeadlinePoints:
    """Warn when `warn_before_fraction` of the window remains, due at its end, flagged
    (挂牌督办) at the end of twice the window.

    For a working-day window the remaining fraction is measured in working time (the
    24 hours of each working day), so a holiday inside the window does not pull the
    warning into the holiday: 1wd from the eve of National Day warns on the first
    morning back, not while nobody is at work.
    """
    fraction = _config().warn_before_fraction
    if not 0 <= fraction <= 1:
        raise ValueError(f"warn_before_fraction must be between 0 and 1, not {fraction}")
    due = add_window(start, window)
    flag = add_window(start, Window(window.amount * 2, window.unit))
    if window.unit in _CLOCK_UNITS:
        warn = _elapsed(start, _CLOCK_UNITS[window.unit] * window.amount * (1 - fraction))
    else:
        local_due = due.astimezone(ZoneInfo(_config().timezone))
        remaining = timedelta(days=window.amount) * fraction
        warn = _working_time_before(local_due, remaining).astimezone(start.tzinfo)
    return DeadlinePoints(warn_at=warn, due_at=due, flag_at=flag)


def next_visit_due(last_visit_or_start: datetime, level: str) -> datetime:
    """When the next follow-up visit (跟踪回访) is due at the level's frequency."""
    return add_window(last_visit_or_start, policy(level).visit)
