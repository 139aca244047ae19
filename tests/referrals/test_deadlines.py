"""Deadline arithmetic on the Chinese calendar, with fixed dates from chinese_calendar's own
2026 data: Mid-Autumn 25–27 September (Fri–Sun), National Day 1–7 October (Thu–Wed), and
the 调休 working days Sunday 20 September and Saturday 10 October."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from workflows.config import load
from workflows.referrals.deadlines import (
    LEVEL_LABELS,
    RiskPolicy,
    Window,
    add_window,
    deadline_points,
    is_workday,
    levels,
    next_visit_due,
    parse_window,
    policy,
)

SH = ZoneInfo("Asia/Shanghai")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


def due(start: datetime, window: str) -> datetime:
    return add_window(start, parse_window(window))


def test_the_calendar_knows_holidays_and_adjusted_working_weekends():
    assert not is_workday(date(2026, 9, 25))  # Mid-Autumn, a Friday
    assert not is_workday(date(2026, 10, 5))  # National Day, a Monday
    assert not is_workday(date(2026, 9, 19))  # an ordinary Saturday
    assert is_workday(date(2026, 9, 20))  # 调休: a Sunday that is worked
    assert is_workday(date(2026, 10, 10))  # 调休: a Saturday that is worked


def test_parse_window():
    assert parse_window("30m") == Window(30, "m")
    assert parse_window(" 10wd ") == Window(10, "wd")
    assert parse_window("7d") == Window(7, "d")
    for bad in ("soon", "0m", "3", "-1h", "4 hours", "2w", ""):
        with pytest.raises(ValueError):
            parse_window(bad)


def test_clock_windows_run_through_midnight_and_holidays():
    assert due(at(2026, 10, 1, 23, 50), "30m") == at(2026, 10, 2, 0, 20)
    assert due(at(2026, 12, 31, 22, 30), "4h") == at(2027, 1, 1, 2, 30)
    assert due(at(2026, 10, 1, 23, 0), "24h") == at(2026, 10, 2, 23, 0)
    assert due(at(2026, 9, 30, 8, 0), "7d") == at(2026, 10, 7, 8, 0)


def test_working_days_skip_mid_autumn_and_national_day_and_count_the_adjusted_saturday():
    start = at(2026, 9, 24, 10, 0)  # Thursday before Mid-Autumn
    assert due(start, "1wd") == at(2026, 9, 28, 10, 0)
    # 28, 29, 30 Sep, then 8, 9, 10 (调休 Saturday), 12, 13, 14, 15 Oct.
    assert due(start, "10wd") == at(2026, 10, 15, 10, 0)
    eve = at(2026, 9, 30, 15, 0)  # Wednesday before National Day
    assert due(eve, "1wd") == at(2026, 10, 8, 15, 0)
    assert due(eve, "3wd") == at(2026, 10, 10, 15, 0)
    assert due(eve, "4wd") == at(2026, 10, 12, 15, 0)  # Sunday 11th is off


def test_working_days_count_an_adjusted_sunday():
    friday = at(2026, 9, 18, 15, 0)
    assert due(friday, "1wd") == at(2026, 9, 20, 15, 0)
    assert due(friday, "3wd") == at(2026, 9, 22, 15, 0)


def test_a_start_on_a_day_off_counts_from_the_next_working_morning():
    assert due(at(2026, 10, 3, 11, 0), "1wd") == at(2026, 10, 9, 9, 0)  # holiday → Fri 09:00
    assert due(at(2026, 11, 7, 14, 0), "1wd") == at(2026, 11, 10, 9, 0)  # Sat → Tue 09:00
    assert due(at(2026, 10, 10, 11, 0), "1wd") == at(2026, 10, 12, 11, 0)  # 调休 Sat is worked


def test_a_utc_start_is_judged_on_the_local_calendar_and_answered_in_utc():
    start = datetime(2026, 9, 30, 17, 30, tzinfo=UTC)  # 1 October 01:30 in Shanghai
    result = due(start, "1wd")
    assert result == at(2026, 10, 9, 9, 0)
    assert result.tzinfo is UTC


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        due(datetime(2026, 10, 1, 12, 0), "30m")
    with pytest.raises(ValueError):
        due(datetime(2026, 10, 1, 12, 0), "1wd")


def test_years_without_calendar_data_fall_back_to_monday_to_friday():
    assert due(at(2099, 1, 2, 10, 0), "1wd") == at(2099, 1, 5, 10, 0)  # Fri → Mon
    assert due(at(2099, 1, 3, 10, 0), "1wd") == at(2099, 1, 6, 9, 0)  # Sat → Tue 09:00
    # chinese_calendar 1.11 ends with 2026 and no deployment file names 2027 here: the window
    # runs Monday to Friday (the service warns meanwhile; tests/calendar/test_holidays.py has
    # the file).
    assert due(at(2026, 12, 30, 10, 0), "3wd") == at(2027, 1, 4, 10, 0)


def test_clock_points_warn_at_three_quarters_and_flag_at_twice_the_window():
    points = deadline_points(at(2026, 11, 2, 10, 0), parse_window("2h"))
    assert points.warn_at == at(2026, 11, 2, 11, 30)
    assert points.due_at == at(2026, 11, 2, 12, 0)
    assert points.flag_at == at(2026, 11, 2, 14, 0)
    night = deadline_points(at(2026, 10, 1, 23, 50), parse_window("30m"))
    assert night.warn_at == at(2026, 10, 2, 0, 12, 30)
    assert night.flag_at == at(2026, 10, 2, 0, 50)


def test_working_day_points_warn_in_working_time_not_during_the_holiday():
    eve = deadline_points(at(2026, 9, 30, 15, 0), parse_window("1wd"))
    assert eve.due_at == at(2026, 10, 8, 15, 0)
    assert eve.warn_at == at(2026, 10, 8, 9, 0)  # 6 of the 24 working hours left
    assert eve.flag_at == at(2026, 10, 9, 15, 0)  # 2wd
    friday = deadline_points(at(2026, 9, 18, 15, 0), parse_window("3wd"))
    assert friday.due_at == at(2026, 9, 22, 15, 0)
    assert friday.warn_at == at(2026, 9, 21, 21, 0)  # 18h left: 15 on Tue, 3 on Mon
    assert friday.flag_at == at(2026, 9, 28, 15, 0)  # 6wd, Mid-Autumn skipped


def test_default_policy_matches_the_domain_table():
    assert levels() == ["red", "orange", "yellow", "blue"]
    assert dict(LEVEL_LABELS) == {"red": "红", "orange": "橙", "yellow": "黄", "blue": "蓝"}
    assert policy("red") == RiskPolicy("red", "红", Window(30, "m"), Window(2, "h"), Window(7, "d"))
    assert policy("orange").action == Window(24, "h")
    assert policy("yellow").claim == Window(1, "wd")
    assert policy("blue").action == Window(10, "wd")
    assert next_visit_due(at(2026, 1, 1, 10, 0), "red") == at(2026, 1, 8, 10, 0)
    assert next_visit_due(at(2026, 1, 1, 10, 0), "yellow") == at(2026, 1, 31, 10, 0)
    assert next_visit_due(at(2026, 1, 1, 10, 0), "blue") == at(2026, 4, 1, 10, 0)


def test_an_unknown_level_is_refused():
    with pytest.raises(ValueError, match="purple"):
        policy("purple")
    with pytest.raises(ValueError):
        next_visit_due(at(2026, 1, 1), "purple")
    assert "purple" not in LEVEL_LABELS


THREE_LEVELS = """
levels = ["red", "orange", "blue"]
timezone = "Asia/Shanghai"
working_day_starts = "08:30"
warn_before_fraction = 0.5
[red]
label = "红"
claim = "15m"
action = "1h"
visit = "7d"
[orange]
label = "橙"
claim = "2h"
action = "12h"
visit = "14d"
[blue]
label = "蓝"
claim = "2wd"
action = "5wd"
visit = "60d"
"""


@pytest.fixture
def three_levels(tmp_path, monkeypatch):
    (tmp_path / "risk.toml").write_text(THREE_LEVELS)
    monkeypatch.setenv("HOTLINE_CONFIG_DIR", str(tmp_path))
    load.cache_clear()
    yield
    monkeypatch.undo()
    load.cache_clear()


@pytest.mark.usefixtures("three_levels")
def test_a_three_level_deployment():
    assert levels() == ["red", "orange", "blue"]
    assert dict(LEVEL_LABELS) == {"red": "红", "orange": "橙", "blue": "蓝"}
    with pytest.raises(ValueError):
        policy("yellow")
    assert policy("blue").claim == Window(2, "wd")
    assert due(at(2026, 10, 4, 12, 0), "1wd") == at(2026, 10, 9, 8, 30)
    start = at(2026, 11, 2, 10, 0)
    points = deadline_points(start, policy("red").claim)
    assert points.warn_at == start + timedelta(minutes=7, seconds=30)
    assert next_visit_due(start, "orange") == at(2026, 11, 16, 10, 0)
