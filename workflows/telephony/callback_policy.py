"""Which unanswered calls go on the operators' call-back list, how urgent, and by when.

A child-protection line does not let a caller who reached out go unanswered: a voicemail,
a caller who pressed the emergency key and was never answered, or one who gave up after
waiting long enough, is called back. Voicemails and missed emergency calls are red tasks,
callers who gave up orange; each is due within its level's claim window (risk.toml).
Without a caller number nobody can be called back.
"""

from dataclasses import dataclass
from datetime import datetime

from workflows import config
from workflows.referrals.deadlines import add_window, levels, policy

REASON_LABELS = {
    "voicemail": "语音留言",
    "missed_emergency": "紧急来电未接通",
    "abandoned": "等待中挂断",
}
_PRIORITY = {"voicemail": "red", "missed_emergency": "red", "abandoned": "orange"}


@dataclass(frozen=True)
class CallOutcome:
    has_number: bool
    answered: bool
    emergency: bool
    voicemail: bool
    waited_seconds: int


def callback_reason(call: CallOutcome) -> str | None:
    if not call.has_number or call.answered:
        return None
    if call.voicemail:
        return "voicemail"
    if call.emergency:
        return "missed_emergency"
    if call.waited_seconds >= config.channels().voice.callback_after_wait_seconds:
        return "abandoned"
    return None


def priority(reason: str) -> str:
    """The reason's risk level, or the most urgent level a deployment has if it lacks it."""
    wanted = _PRIORITY[reason]
    return wanted if wanted in levels() else levels()[0]


def due(reason: str, since: datetime) -> datetime:
    return add_window(since, policy(priority(reason)).claim)
