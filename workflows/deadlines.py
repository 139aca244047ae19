"""Risk-level policy and deadline arithmetic on the Chinese working-day calendar.

Clock windows ("30m", "4h") run around the clock. Working-day windows ("3wd") follow
chinese_calendar, which knows public holidays and 调休 working weekends: N working days
end at the same local clock time on the Nth working day after the start's day; a start on
a non-working day counts from the working-day start time (09:00) of the next working day.
For years the library has no data for yet, Monday to Friday are taken as working days.
"""

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

from workflows.config import load


@dataclass(frozen=True)
class Window:
    amount: int
    unit: str  # "m", "h" or "wd"


@dataclass(frozen=True)
class RiskPolicy:
    level: str
    label: str
    claim: Window
    action: Window
    visit_every: timedelta


@dataclass(frozen=True)
class DeadlinePoints:
    warn_at: datetime
    due_at: datetime
    flag_at: datetime


_WINDOW = re.compile(r"^\s*(\d+)\s*(m|h|wd)\s*$")


def parse_window(text: str) -> Window:
    match = _WINDOW.match(text)
    if not match:
        raise ValueError(f"not a window: {text!r} (use e.g. 30m, 4h, 3wd)")
    return Window(int(match.group(1)), match.group(2))


def _config() -> dict:
    return load("risk")


def levels() -> list[str]:
    return list(_config()["levels"])


def policy(level: str) -> RiskPolicy:
    """The level's windows; ValueError for a level this deployment does not use."""
    cfg = _config()
    if level not in cfg["levels"]:
        raise ValueError(f"unknown risk level {level!r}")
    rules = cfg[level]
    return RiskPolicy(
        level=level,
        label=rules["label"],
        claim=parse_window(rules["claim"]),
        action=parse_window(rules["action"]),
        visit_every=timedelta(days=rules["visit_every_days"]),
    )


def level_labels() -> dict[str, str]:
    return {level: _config()[level]["label"] for level in levels()}


def is_workday(day: date) -> bool:
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:  # a year the library has no data for yet
        return day.weekday() < 5


def _local(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("deadlines need timezone-aware datetimes")
    return moment.astimezone(ZoneInfo(_config()["timezone"]))


def _add_working_days(start: datetime, days: int) -> datetime:
    local = _local(start)
    if not is_workday(local.date()):
        opens = time.fromisoformat(_config()["working_day_starts"])
        day = local.date() + timedelta(days=1)
        while not is_workday(day):
            day += timedelta(days=1)
        local = datetime.combine(day, opens, tzinfo=local.tzinfo)
    day, counted = local.date(), 0
    while counted < days:
        day += timedelta(days=1)
        if is_workday(day):
            counted += 1
    return datetime.combine(day, local.timetz()).astimezone(start.tzinfo)


def add_window(start: datetime, window: Window) -> datetime:
    if window.unit == "m":
        return start + timedelta(minutes=window.amount)
    if window.unit == "h":
        return start + timedelta(hours=window.amount)
    return _add_working_days(start, window.amount)


def deadline_points(start: datetime, window: Window) -> DeadlinePoints:
    """Warn when `warn_before_fraction` of the elapsed window remains; due at the window's
    end; flagged (挂牌督办) at twice the window."""
    due = add_window(start, window)
    fraction = float(_config()["warn_before_fraction"])
    warn = due - (due - start) * fraction
    flag = add_window(start, Window(window.amount * 2, window.unit))
    return DeadlinePoints(warn_at=warn, due_at=due, flag_at=flag)


def next_visit_due(since: datetime, level: str) -> datetime:
    return since + policy(level).visit_every
