"""Deadline arithmetic on the Chinese calendar, with fixed dates (2026's National Day
holiday, 1–7 October, and its 调休 working Saturday, 10 October)."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from workflows.config import load
from workflows.deadlines import (
    add_window,
    deadline_points,
    is_workday,
    levels,
    next_visit_due,
    parse_window,
    policy,
)

SH = ZoneInfo("Asia/Shanghai")


def at(*args) -> datetime:
    return datetime(*args, tzinfo=SH)


def test_the_calendar_knows_holidays_and_adjusted_working_weekends():
    assert not is_workday(at(2026, 10, 5).date())  # National Day, a Monday
    assert is_workday(at(2026, 10, 10).date())  # 调休: a Saturday that is worked
    assert is_workday(at(2026, 9, 20).date())  # another 调休 Sunday


def test_clock_windows_run_through_nights_and_holidays():
    assert add_window(at(2026, 10, 1, 23, 50), parse_window("30m")) == at(2026, 10, 2, 0, 20)
    assert add_window(at(2026, 10, 1, 23, 0), parse_window("24h")) == at(2026, 10, 2, 23, 0)


def test_working_days_skip_the_holiday_and_count_the_adjusted_saturday():
    start = at(2026, 9, 30, 15, 0)  # Wednesday before the holiday
    assert add_window(start, parse_window("1wd")) == at(2026, 10, 8, 15, 0)
    assert add_window(start, parse_window("3wd")) == at(2026, 10, 10, 15, 0)  # 调休 Saturday
    assert add_window(start, parse_window("4wd")) == at(2026, 10, 12, 15, 0)


def test_a_start_on_a_holiday_counts_from_the_next_working_morning():
    assert add_window(at(2026, 10, 3, 11, 0), parse_window("1wd")) == at(2026, 10, 9, 9, 0)


def test_a_utc_start_is_judged_on_the_local_calendar():
    # 2026-09-30 17:30 UTC is already 1 October 01:30 in Shanghai: a holiday.
    start = datetime(2026, 9, 30, 17, 30, tzinfo=UTC)
    due = add_window(start, parse_window("1wd"))
    assert due.astimezone(SH) == at(2026, 10, 9, 9, 0)
    assert due.tzinfo == UTC


def test_years_without_calendar_data_fall_back_to_monday_to_friday():
    assert add_window(at(2031, 1, 3, 10, 0), parse_window("1wd")) == at(2031, 1, 6, 10, 0)


def test_points_warn_before_the_deadline_and_flag_at_twice_the_window():
    points = deadline_points(at(2026, 11, 2, 10, 0), parse_window("2h"))
    assert points.due_at == at(2026, 11, 2, 12, 0)
    assert points.warn_at == at(2026, 11, 2, 11, 30)  # a quarter of the window left
    assert points.flag_at == at(2026, 11, 2, 14, 0)
    working = deadline_points(at(2026, 9, 30, 15, 0), parse_window("1wd"))
    assert working.flag_at == at(2026, 10, 9, 15, 0)


def test_default_policy_matches_the_domain_table():
    assert levels() == ["red", "orange", "yellow", "blue"]
    assert policy("red").claim == parse_window("30m")
    assert policy("orange").action == parse_window("24h")
    assert policy("blue").action == parse_window("10wd")
    assert next_visit_due(at(2026, 1, 1), "yellow") == at(2026, 1, 31)
    with pytest.raises(ValueError):
        policy("purple")
    with pytest.raises(ValueError):
        parse_window("soon")


def test_a_three_level_deployment(tmp_path, monkeypatch):
    text = (
        'levels = ["red", "orange", "blue"]\ntimezone = "Asia/Shanghai"\n'
        'working_day_starts = "08:30"\nwarn_before_fraction = 0.5\n'
        '[red]\nlabel = "红"\nclaim = "15m"\naction = "1h"\nvisit_every_days = 7\n'
        '[orange]\nlabel = "橙"\nclaim = "2h"\naction = "12h"\nvisit_every_days = 14\n'
        '[blue]\nlabel = "蓝"\nclaim = "2wd"\naction = "5wd"\nvisit_every_days = 60\n'
    )
    (tmp_path / "risk.toml").write_text(text)
    monkeypatch.setenv("HOTLINE_CONFIG_DIR", str(tmp_path))
    load.cache_clear()
    try:
        assert levels() == ["red", "orange", "blue"]
        with pytest.raises(ValueError):
            policy("yellow")
        assert add_window(at(2026, 10, 4, 12, 0), parse_window("1wd")) == at(2026, 10, 9, 8, 30)
        start = at(2026, 11, 2, 10, 0)
        assert deadline_points(start, policy("red").claim).warn_at == start + timedelta(
            minutes=7, seconds=30)
    finally:
        monkeypatch.delenv("HOTLINE_CONFIG_DIR")
        load.cache_clear()
