"""When operators answer the hotline: ranges per kind of day, from `channels.toml`.

Days are working days (including 调休 working weekends), weekends, or statutory public
holidays, by chinese_calendar; for years it has no data for yet, Monday to Friday are
working days and no day is a holiday. Outside the hours callers are offered voicemail.
"""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import chinese_calendar

from workflows.config import load

DAY_KINDS = ("workday", "weekend", "holiday")
DAY_LABELS = {"workday": "工作日", "weekend": "周末", "holiday": "法定节假日"}
_END_OF_DAY = "24:00"


def _hotline() -> dict:
    return load("channels")["hotline"]


def day_kind(day: date) -> str:
    try:
        if chinese_calendar.is_workday(day):
            return "workday"
        _, holiday_name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:  # a year the library has no data for yet
        return "workday" if day.weekday() < 5 else "weekend"
    return "holiday" if holiday_name else "weekend"


def _clock(text: str) -> time:
    return time.max if text == _END_OF_DAY else time.fromisoformat(text)


def parse_range(text: str) -> tuple[time, time]:
    """`"08:00-22:00"` → (start, end); the end may be "24:00". ValueError if malformed."""
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError(f"not an hours range: {text!r} (use e.g. 08:00-22:00)")
    opens, closes = _clock(start.strip()), _clock(end.strip())
    if closes <= opens:
        raise ValueError(f"hours range ends before it starts: {text!r}")
    return opens, closes


def local(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("opening hours need timezone-aware datetimes")
    return moment.astimezone(ZoneInfo(_hotline()["timezone"]))


def is_open(moment: datetime) -> bool:
    here = local(moment)
    ranges = _hotline()["hours"][day_kind(here.date())]
    clock = here.time()
    return any(opens <= clock < closes for opens, closes in map(parse_range, ranges))


def describe() -> str:
    """The hours in words, for greetings and HELP: `工作日08:00-22:00，周末休息`."""
    hours = _hotline()["hours"]
    parts = []
    for kind in DAY_KINDS:
        ranges = "、".join(hours[kind]) if hours[kind] else "休息"
        parts.append(f"{DAY_LABELS[kind]}{ranges}")
    return "，".join(parts)
