"""Times as people on shift read them: local clock time, and deadlines as time left."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

from db import clock
from workflows import config


def local_zone() -> ZoneInfo:
    return ZoneInfo(config.risk().timezone)


def local(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if moment is None:
        return ""
    return moment.astimezone(local_zone()).strftime(fmt)


def _span(seconds: int) -> str:
    minutes = max(1, seconds // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}天{hours}小时" if hours else f"{days}天"
    if hours:
        return f"{hours}小时{minutes}分" if minutes else f"{hours}小时"
    return f"{minutes}分钟"


def time_left(due: datetime | None, now: datetime | None = None) -> str:
    """ "剩余2小时15分" before the deadline, "已超时35分钟" after it."""
    if due is None:
        return ""
    seconds = int((due - (now or clock.now())).total_seconds())
    return f"剩余{_span(seconds)}" if seconds >= 0 else f"已超时{_span(-seconds)}"


def urgency(due: datetime | None, now: datetime | None = None) -> str:
    """A CSS class: overdue, soon (within the hour), or ok."""
    if due is None:
        return "ok"
    seconds = (due - (now or clock.now())).total_seconds()
    return "overdue" if seconds < 0 else "soon" if seconds < 3600 else "ok"


def parse_local(text: str) -> datetime | None:
    """A browser's datetime-local value ("2026-11-22T14:30"), read as local time."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=local_zone())


def parse_day(text: str) -> date | None:
    """A date field's value ("2026-11-22"); an empty or unreadable one is no date."""
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None
