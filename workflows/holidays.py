"""The public-holiday calendar: chinesecalendar's data, overridden and extended by the
deployment's `holidays.toml` (the State Council's notice for a year, typed in when it is
published).

chinesecalendar 1.11, its newest release, knows 2004–2026 only; past its data every deadline
would treat the Spring Festival and National Day as working days, silently. A year in
`holidays.toml` replaces the library's answer for that whole year (the notice is the
authority); a year known to neither falls back to Monday–Friday, and `missing_years` says so,
so the service can warn (readiness, the supervisors' board, the scheduler's log) instead of
being silently wrong. No dates are shipped that the State Council has not published.
"""

import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Literal

import chinese_calendar
from chinese_calendar import constants

from workflows.config import load

DayKind = Literal["workday", "weekend", "holiday"]
# From this day of the year on, next year's calendar is expected too (notices come out in
# the autumn; a December deadline already runs into January).
NEXT_YEAR_FROM = (11, 1)


class HolidayFileError(ValueError):
    """holidays.toml is malformed; the message names the key."""


@dataclass(frozen=True)
class YearCalendar:
    """One year as a notice gives it: its holidays (date → name) and 调休 working days."""

    year: int
    notice: str
    holidays: dict[date, str]
    workdays: frozenset[date]


def _range(entry: dict, where: str) -> list[date]:
    start, end = entry.get("from"), entry.get("to", entry.get("from"))
    if not isinstance(start, date) or not isinstance(end, date) or end < start:
        raise HolidayFileError(f"holidays.toml {where}: from/to 必须是日期，且 to 不早于 from")
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def _parse_year(key: str, table: dict) -> YearCalendar:
    if not key.isdigit():
        raise HolidayFileError(f"holidays.toml [{key}]: 表名应为年份，如 [2027]")
    year = int(key)
    holidays: dict[date, str] = {}
    for i, entry in enumerate(table.get("holidays", [])):
        where = f"[{key}].holidays[{i}]"
        name = entry.get("name") if isinstance(entry, dict) else None
        if not name:
            raise HolidayFileError(f"holidays.toml {where}: 需要 name（节日名称）")
        for day in _range(entry, where):
            holidays[day] = name
    workdays = table.get("workdays", [])
    if not all(isinstance(d, date) for d in workdays):
        raise HolidayFileError(f"holidays.toml [{key}].workdays: 应为日期列表，如 [2027-02-07]")
    for day in [*holidays, *workdays]:
        if day.year != year:
            raise HolidayFileError(f"holidays.toml [{key}]: 日期 {day} 不在 {year} 年内")
    return YearCalendar(year, str(table.get("notice", "")), holidays, frozenset(workdays))


@cache
def _deployment_years() -> dict[int, YearCalendar]:
    try:
        data = load("holidays")
    except tomllib.TOMLDecodeError as exc:
        raise HolidayFileError(f"holidays.toml 无法解析：{exc}") from exc
    years = {}
    for key, table in data.items():
        if isinstance(table, dict):
            calendar = _parse_year(key, table)
            years[calendar.year] = calendar
    return years


def reset() -> None:
    """Forget the parsed file (after the config folder changed: tests, a reload)."""
    _deployment_years.cache_clear()
    day_kind.cache_clear()


@cache
def _library_years() -> range:
    last = max(max(constants.holidays), max(constants.workdays)).year
    first = min(min(constants.holidays), min(constants.workdays)).year
    return range(first, last + 1)


def has_data(year: int) -> bool:
    """Whether the holidays of `year` are known (the deployment's file or the library)."""
    return year in _deployment_years() or year in _library_years()


@cache
def day_kind(day: date) -> DayKind:
    """A working day (调休 weekends included), a weekend, or a public holiday.

    Remembered per day (until `reset`): a deadline walks the calendar day by day, and the
    library's lookup cost ~15 % of the worker's CPU in a burst of intakes."""
    own = _deployment_years().get(day.year)
    if own is not None:
        if day in own.workdays:
            return "workday"
        if day in own.holidays:
            return "holiday"
        return "workday" if day.weekday() < 5 else "weekend"
    if day.year in _library_years():
        if chinese_calendar.is_workday(day):
            return "workday"
        return "holiday" if chinese_calendar.get_holiday_detail(day)[1] else "weekend"
    return "workday" if day.weekday() < 5 else "weekend"


def is_workday(day: date) -> bool:
    return day_kind(day) == "workday"


def missing_years(today: date) -> list[int]:
    """The years that should be known by `today` but are not: this one, and from
    1 November the next one."""
    wanted = [today.year]
    if (today.month, today.day) >= NEXT_YEAR_FROM:
        wanted.append(today.year + 1)
    return [year for year in wanted if not has_data(year)]


def calendar_warning(today: date) -> str | None:
    """The warning people read while a needed year is missing, or None."""
    missing = missing_years(today)
    if not missing:
        return None
    years = "、".join(f"{y}年" for y in missing)
    return (
        f"节假日数据缺少{years}：工作日期限暂按周一至周五计算，春节、国庆等假期会被当作工作日。"
        f"请按国务院办公厅当年的节假日安排通知填写配置目录中的 holidays.toml。"
    )
