"""When a texter's next message joins their earlier report instead of opening a new one.

A thread stays active while it has seen a message, in or out, within the configured window
(a staff reply keeps the conversation open) and its case is still open; a message after
that opens a new report.
"""

from datetime import datetime, timedelta

from workflows import config
from workflows.cases.workflow import FINISHED

# Case states after which a thread takes no more messages.
ENDED_CASE_STATES = FINISHED


def window() -> timedelta:
    return timedelta(hours=config.channels().sms.thread_window_hours)


def active_since(now: datetime) -> datetime:
    """Threads whose last message is after this moment are still active."""
    return now - window()
