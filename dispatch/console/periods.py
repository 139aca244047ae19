"""Reporting periods in local time: a quarter ("2026Q3", what districts report on) or any
range of days the supervisor picks."""

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from db import clock
from dispatch.console.timefmt import local_zone
from workflows.errors import Invalid

_QUARTER = re.compile(r"(\d{4})Q([1-4])")
MAX_DAYS = 3 * 366


@dataclass(frozen=True)
class Period:
    start: datetime  # inclusive
    end: datetime  # exclusive
    label: str
    quarter: str | None = None  # "2026Q3" when the period is a quarter

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(seconds=1)).date()


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=local_zone())


def quarter(code: str) -> Period:
    match = _QUARTER.fullmatch(code)
    if not match:
        raise Invalid("bad_period", "季度格式应为 2026Q3 这样的形式")
    year, q = int(match.group(1)), int(match.group(2))
    if not 2000 <= year <= 2100:
        raise Invalid("bad_period", "年份超出范围")
    first = date(year, 3 * q - 2, 1)
    after = date(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1)
    return Period(_midnight(first), _midnight(after), f"{year}年第{q}季度", code)


def current_quarter(today: date | None = None) -> str:
    today = today or clock.now().astimezone(local_zone()).date()
    return f"{today.year}Q{(today.month - 1) // 3 + 1}"


def recent_quarters(count: int = 8) -> list[str]:
    today = clock.now().astimezone(local_zone()).date()
    year, q = today.year, (today.month - 1) // 3 + 1
    out = []
    for _ in range(count):
        out.append(f"{year}Q{q}")
        year, q = (year - 1, 4) if q == 1 else (year, q - 1)
    return out


def days(first: date, last: date) -> Period:
    if last < first:
        raise Invalid("bad_period", "结束日期不能早于开始日期")
    if (last - first).days > MAX_DAYS:
        raise Invalid("bad_period", "统计区间不能超过三年")
    label = f"{first.isoformat()} 至 {last.isoformat()}"
    return Period(_midnight(first), _midnight(last + timedelta(days=1)), label)


def chosen(quarter_code: str, first: date | None, last: date | None) -> Period:
    """The period a page was asked for: dates when both are given, else the quarter (the
    current one by default)."""
    if first and last:
        return days(first, last)
    return quarter(quarter_code or current_quarter())
