"""Deadline rules at their edges: the answer is in the start's timezone, working time is
counted on the local calendar, a warning that falls exactly at midnight stays on the due
day, the warning fraction's bounds, and what a misconfigured or misused rule says."""

from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from workflows.config import load
from workflows.referrals.deadlines import (
    LEVEL_LABELS,
    add_window,
    deadline_points,
    parse_window,
    policy,
)

SH = ZoneInfo("Asia/Shanghai")
EIGHT_HOURS = timedelta(hours=8)
DEFAULT_RISK = (Path(__file__).parents[2] / "workflows/config/risk.toml").read_text("utf-8")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


@pytest.fixture
def warn_fraction(tmp_path, monkeypatch):
    """The shipped risk.toml with another warn_before_fraction."""

    def use(fraction: str) -> None:
        text = DEFAULT_RISK.replace("warn_before_fraction = 0.25",
                                    f"warn_before_fraction = {fraction}")
        assert text != DEFAULT_RISK
        (tmp_path / "risk.toml").write_text(text, encoding="utf-8")
        monkeypatch.setenv("HOTLINE_CONFIG_DIR", str(tmp_path))
        load.cache_clear()

    yield use
    monkeypatch.undo()
    load.cache_clear()


class NoOffset(tzinfo):
    """A zone that does not know its offset: as unusable as none."""

    def utcoffset(self, dt):
        return None

    def dst(self, dt):
        return None


@pytest.mark.parametrize("start", [datetime(2026, 11, 2, 10, 0),
                                   datetime(2026, 11, 2, 10, 0, tzinfo=NoOffset())])
def test_a_moment_without_an_offset_is_refused_saying_so(start):
    for window in ("30m", "1wd"):
        with pytest.raises(ValueError, match="^deadlines need timezone-aware datetimes$"):
            add_window(start, parse_window(window))


@pytest.mark.parametrize("window", ["30m", "4h", "7d", "1wd", "3wd"])
def test_every_point_is_in_the_start_s_timezone(window):
    start = at(2026, 11, 2, 10, 0)
    points = deadline_points(start, parse_window(window))
    for moment in (points.warn_at, points.due_at, points.flag_at):
        assert moment.utcoffset() == EIGHT_HOURS, (window, moment)
    assert add_window(start, parse_window(window)).utcoffset() == EIGHT_HOURS


def test_a_warning_exactly_at_midnight_stays_on_the_due_day():
    # Friday 06:00 + 1wd is due Monday 06:00; 6 working hours before is Monday 00:00, not
    # the end of Friday (the weekend is no working time either way).
    points = deadline_points(at(2026, 11, 20, 6, 0), parse_window("1wd"))
    assert points.due_at == at(2026, 11, 23, 6, 0)
    assert points.warn_at == at(2026, 11, 23, 0, 0)


@pytest.mark.parametrize("start", [at(2026, 11, 20, 9, 0), at(2026, 11, 20, 9, 0).astimezone(UTC)])
def test_working_time_before_the_due_moment_is_counted_on_the_local_calendar(start):
    # Due Monday 09:00 in Shanghai (01:00 UTC): 6 of the 24 working hours left is Monday
    # 03:00 local, whatever zone the start was given in.
    points = deadline_points(start, parse_window("1wd"))
    assert points.due_at == at(2026, 11, 23, 9, 0)
    assert points.warn_at == at(2026, 11, 23, 3, 0)


def test_a_fraction_of_zero_warns_at_the_due_moment(warn_fraction):
    warn_fraction("0")
    for window in ("2h", "1wd"):
        points = deadline_points(at(2026, 11, 2, 10, 0), parse_window(window))
        assert points.warn_at == points.due_at


def test_a_fraction_of_one_warns_at_once(warn_fraction):
    warn_fraction("1")
    start = at(2026, 11, 2, 10, 0)
    assert deadline_points(start, parse_window("2h")).warn_at == start


@pytest.mark.parametrize("fraction", ["1.5", "-0.25"])
def test_a_fraction_outside_zero_to_one_is_refused_naming_it(warn_fraction, fraction):
    warn_fraction(fraction)
    with pytest.raises(ValueError, match=f"between 0 and 1, not {fraction}"):
        deadline_points(at(2026, 11, 2, 10, 0), parse_window("2h"))


def test_misconfigured_windows_and_levels_say_what_is_allowed():
    with pytest.raises(ValueError, match=r"not a window: '0h' \(use e.g. 30m, 4h, 7d, 3wd\)"):
        parse_window("0h")
    with pytest.raises(ValueError, match="configured: red, orange, yellow, blue"):
        policy("purple")
    with pytest.raises(KeyError, match="purple"):
        LEVEL_LABELS["purple"]
