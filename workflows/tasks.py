"""Task deadlines: when a task warns, is due (督办) and is flagged (挂牌督办).

A task's due date is given either as a window from its creation ("3wd", "24h", on the
working-day calendar like a referral's) or as a moment someone chose (a conference decided
"by Friday"). Either way the stages are a referral's: warned when `warn_before_fraction` of
the time is left, escalated at the due moment, flagged at twice the time.
"""

from datetime import datetime, timedelta

from workflows import config
from workflows.errors import WorkflowRefused
from workflows.referrals.deadlines import DeadlinePoints, deadline_points, parse_window

# A task is for work within the year. Further out is a typo, and the working-day calendar
# walks day by day: "999999wd" kept the event loop busy for minutes, a far moment (year
# 8694) overflowed the flag moment (twice the time) into a 500 (found by schemathesis).
MAX_DAYS = 366
_DAYS_PER_UNIT = {"m": 1 / 1440, "h": 1 / 24, "d": 1, "wd": 7 / 5}
_TOO_FAR = f"期限最长为{MAX_DAYS}天"
STATES = ("open", "done", "cancelled")


def task_points(start: datetime, due: datetime | str) -> DeadlinePoints:
    """The three moments of a task made at `start`; refused when the due moment is not
    after the start or the window is not one the calendar knows."""
    if isinstance(due, str):
        try:
            window = parse_window(due)
        except ValueError as exc:
            raise WorkflowRefused(
                "bad_due", "期限格式不正确：可填 30m、4h、7d、3wd（工作日）或具体日期时间"
            ) from exc
        if window.amount * _DAYS_PER_UNIT[window.unit] > MAX_DAYS:
            raise WorkflowRefused("due_too_far", _TOO_FAR)
        return deadline_points(start, window)
    if due.tzinfo is None:
        raise WorkflowRefused("bad_due", "期限需带时区的日期时间")
    if due <= start:
        raise WorkflowRefused("due_in_past", "期限必须晚于现在")
    if due - start > timedelta(days=MAX_DAYS):
        raise WorkflowRefused("due_too_far", _TOO_FAR)
    span = due - start
    fraction = config.risk().warn_before_fraction
    return DeadlinePoints(warn_at=due - span * fraction, due_at=due, flag_at=due + span)



def next_check(points: DeadlinePoints, escalation: int, status: str) -> datetime | None:
    """When the sweep must look again: the next stage not yet reached, none once closed."""
    if status != "open":
        return None
    remaining = [points.warn_at, points.due_at, points.flag_at][escalation:]
    return remaining[0] if remaining else None
