"""Retention periods (PIPL Art. 19, 47): how long each kind of personal data is kept, read
from `retention.toml`, and the dates they end on. Pure: no database, no clock.

Why these kinds and rules:
- a report that never became a case (不予受理, or judged not a case and never registered) is
  kept a year after its last activity: long enough for a repeat call to find it, no longer;
- a closed case is about a child: the file may be needed until the child is grown, so it is
  kept N years after the child turns 18 (and never less than N years after closing); when
  no age is known, a fixed number of years after closing;
- SMS bodies and voicemail recordings are the rawest data (a voice, a phone's own words)
  and add nothing once the case has ended: they go earlier, recordings at Twilio itself.
Anonymised rather than deleted: the yearly statistics count cases by category, date,
jurisdiction and risk level, so those stay and everything that identifies a person goes.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from workflows import config
from workflows.config.schema import RetentionPeriods as Periods

# What replaces a text the job blanked, so a reader sees why it is empty.
MARK = "（已按保存期限匿名化）"

KINDS = ("non_case", "closed_case", "merged_case", "sms_body", "recording", "outbox")
KIND_LABELS = {
    "non_case": "不成立的报告（匿名化）",
    "closed_case": "结案案件（匿名化）",
    "merged_case": "已合并案件（随主案件匿名化）",
    "sms_body": "短信正文（清除）",
    "recording": "通话录音（在 Twilio 删除）",
    "outbox": "已办结的任务队列行（删除）",
}
TIMELINE_LABELS = {
    "legal_hold_placed": "诉讼保全（暂停保存期限）",
    "legal_hold_lifted": "解除诉讼保全",
    "anonymised": "已按保存期限匿名化",
}


def periods() -> Periods:
    """The deployment's periods, checked when the file is read (workflows.config.schema:
    a wrong period deletes data that cannot be brought back, so it is a ConfigError)."""
    return config.retention().retention


def years_before(moment: datetime, years: int) -> datetime:
    """The same instant `years` earlier (29 February falls back to the 28th)."""
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:
        return moment.replace(year=moment.year - years, day=28)


@dataclass(frozen=True)
class Cutoffs:
    """Data older than these instants is past its period, at `now`."""

    non_case: datetime
    closed_adult: datetime  # the later of closing and the 18th birthday, before this
    closed_no_age: datetime  # closing, before this
    sms_body: datetime
    recording: datetime

    @classmethod
    def at(cls, now: datetime, p: Periods) -> "Cutoffs":
        return cls(
            non_case=now - timedelta(days=p.non_case_days),
            closed_adult=years_before(now, p.closed_years_after_adulthood),
            closed_no_age=years_before(now, p.closed_years_without_age),
            sms_body=now - timedelta(days=p.sms_body_days),
            recording=now - timedelta(days=p.recording_days),
        )



def run_day(now: datetime, p: Periods, timezone: str) -> date | None:
    """The local day whose daily run is due at `now` (None before the day's hour)."""
    local = now.astimezone(ZoneInfo(timezone))
    return local.date() if local.hour >= p.hour else None
