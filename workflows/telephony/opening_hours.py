"""When operators answer the hotline: ranges per kind of day, from `channels.toml`.

Days are working days (including 调休 working weekends), weekends, or statutory public
holidays, by `workflows.holidays` (chinese_calendar and the deployment's holidays.toml); for
a year known to neither, Monday to Friday are working days and no day is a holiday. Outside
the hours callers are offered voicemail.
"""

from datetime import datetime, time
from zoneinfo import ZoneInfo

from workflows import config
from workflows.config.schema import Hotline
from workflows.holidays import day_kind

DAY_KINDS = ("workday", "weekend", "holiday")
DAY_LABELS = {"workday": "工作日", "weekend": "周末", "holiday": "法定节假日"}
_END_OF_DAY = "24:00"


def _hotline() -> Hotline:
    return config.channels().hotline


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
    return moment.astimezone(ZoneInfo(_hotline().timezone))


def is_open(moment: datetime) -> bool:
    here = local(moment)
    ranges = _hotline().hours.of(day_kind(here.date()))
    clock = here.time()
    return any(opens <= clock < closes for opens, closes in map(parse_range, ranges))


def describe() -> str:
    """The hours in words, for greetings and HELP: `工作日08:00-22:00，周末休息`."""
    hours = _hotline().hours
    parts = []
    for kind in DAY_KINDS:
        ranges = "、".join(hours.of(kind)) or "休息"
        parts.append(f"{DAY_LABELS[kind]}{ranges}")
    return "，".join(parts)
