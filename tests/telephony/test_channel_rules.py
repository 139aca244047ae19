"""The Twilio channels' pure rules: opening hours on the Chinese calendar, SMS keywords,
status order, the call-back policy, and every configured text."""

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from workflows.config import load
from workflows.telephony import opening_hours
from workflows.telephony.callback_policy import CallOutcome, callback_reason, due, priority
from workflows.telephony.channel_texts import text
from workflows.telephony.delivery_status import CALL_RANKS, MESSAGE_RANKS, advances
from workflows.telephony.sms_keywords import keyword

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def test_days_are_working_days_weekends_or_public_holidays():
    assert opening_hours.day_kind(date(2026, 11, 23)) == "workday"  # a Monday
    assert opening_hours.day_kind(date(2026, 11, 21)) == "weekend"
    assert opening_hours.day_kind(date(2026, 10, 1)) == "holiday"  # National Day
    assert opening_hours.day_kind(date(2026, 9, 20)) == "workday"  # a 调休 working Sunday
    # A year the calendar has no data for: Monday to Friday work, nothing is a holiday.
    assert opening_hours.day_kind(date(2031, 1, 1)) == "workday"
    assert opening_hours.day_kind(date(2031, 1, 4)) == "weekend"


def test_opening_hours_follow_the_kind_of_day():
    assert opening_hours.is_open(at(2026, 11, 23, 8, 0))
    assert opening_hours.is_open(at(2026, 11, 23, 21, 59))
    assert not opening_hours.is_open(at(2026, 11, 23, 22, 0))
    assert not opening_hours.is_open(at(2026, 11, 23, 7, 59))
    # 18:00: open on a working day (a 调休 Sunday too), closed on a weekend or a holiday.
    assert opening_hours.is_open(at(2026, 11, 23, 18, 0))
    assert opening_hours.is_open(at(2026, 9, 20, 18, 0))
    assert not opening_hours.is_open(at(2026, 11, 21, 18, 0))
    assert not opening_hours.is_open(at(2026, 10, 1, 18, 0))
    assert opening_hours.is_open(at(2026, 10, 1, 10, 0))
    # The hotline's clock is Shanghai's, whatever zone the moment comes in.
    assert opening_hours.is_open(datetime(2026, 11, 23, 1, 0, tzinfo=ZoneInfo("UTC")))
    with pytest.raises(ValueError):
        opening_hours.is_open(datetime(2026, 11, 23, 10, 0))


def test_hours_ranges_are_checked():
    assert opening_hours.parse_range("00:00-24:00")[1].hour == 23
    for bad in ("8-22", "22:00-08:00", "08:00"):
        with pytest.raises(ValueError):
            opening_hours.parse_range(bad)
    assert opening_hours.describe() == "工作日08:00-22:00，周末09:00-17:00，法定节假日09:00-17:00"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("退订", "stop"),
        (" 退订。", "stop"),
        ("取消", "stop"),
        ("STOP", "stop"),
        ("stop!", "stop"),
        ("ＳＴＯＰ", "stop"),
        ("开始", "start"),
        ("Start", "start"),
        ("帮助", "help"),
        ("help?", "help"),
        ("请取消", None),
        ("他说要我stop", None),
        ("孩子被打了，帮助他", None),
        ("", None),
    ],
)
def test_keywords_count_only_as_the_whole_message(message, expected):
    assert keyword(message) == expected


def test_statuses_only_move_forward():
    assert advances("pending", "queued", MESSAGE_RANKS)
    assert advances("queued", "sent", MESSAGE_RANKS)
    assert advances("sent", "delivered", MESSAGE_RANKS)
    assert not advances("delivered", "sent", MESSAGE_RANKS)
    assert not advances("delivered", "undelivered", MESSAGE_RANKS)  # the first final wins
    assert not advances("delivered", "delivered", MESSAGE_RANKS)
    assert not advances("queued", "no-such-status", MESSAGE_RANKS)
    assert advances(None, "ringing", CALL_RANKS)
    assert advances("ringing", "completed", CALL_RANKS)
    assert not advances("completed", "in-progress", CALL_RANKS)


def _call(**changes) -> CallOutcome:
    values = {
        "has_number": True,
        "answered": False,
        "emergency": False,
        "voicemail": False,
        "waited_seconds": 0,
    }
    return CallOutcome(**{**values, **changes})


def test_who_is_called_back():
    assert callback_reason(_call(voicemail=True)) == "voicemail"
    assert callback_reason(_call(emergency=True)) == "missed_emergency"
    assert callback_reason(_call(waited_seconds=30)) == "abandoned"
    assert callback_reason(_call(waited_seconds=29)) is None
    assert callback_reason(_call(answered=True, emergency=True)) is None
    assert callback_reason(_call(has_number=False, voicemail=True)) is None
    assert priority("voicemail") == priority("missed_emergency") == "red"
    assert priority("abandoned") == "orange"
    start = at(2026, 11, 23, 23, 0)
    assert due("voicemail", start) == start + timedelta(minutes=30)  # red: claim in 30 min
    assert due("abandoned", start) == start + timedelta(hours=4)


def test_every_configured_text_fills_in():
    texts = load("channels")
    for channel in ("sms", "voice"):
        for key in texts[channel]["texts"]:
            filled = text(channel, key, code="ABCDE-FGHJK", seconds=42)
            assert "{" not in filled and re.search(r"[\u4e00-\u9fff]", filled), key
    assert "ABCDE-FGHJK" in text("sms", "receipt", code="ABCDE-FGHJK")
    assert "工作日08:00-22:00" in text("sms", "help")
