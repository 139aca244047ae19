"""Task deadlines as pure rules: windows on the working-day calendar, chosen moments, stages."""

from datetime import UTC, datetime, timedelta

import pytest

from workflows.errors import WorkflowRefused
from workflows.referrals.deadlines import ESCALATED, FLAGGED, WARNED, stage_at
from workflows.tasks import next_check, task_points

START = datetime(2026, 9, 30, 10, 0, tzinfo=UTC)  # the eve of the National Day holiday


def test_a_working_day_window_skips_the_holiday_like_a_referral():
    points = task_points(START, "1wd")
    # 1 October to 7 October are holidays (2026): due on the first working day after.
    assert points.due_at.date() >= datetime(2026, 10, 8).date()
    assert points.warn_at < points.due_at < points.flag_at


def test_a_chosen_moment_warns_before_and_flags_at_twice_the_time():
    due = START + timedelta(days=4)
    points = task_points(START, due)
    assert points.due_at == due
    assert START < points.warn_at < due
    assert points.flag_at == START + timedelta(days=8)


@pytest.mark.parametrize("bad", ["0d", "soon", "3 weeks", ""])
def test_a_window_the_calendar_does_not_know_is_refused(bad):
    with pytest.raises(WorkflowRefused) as refused:
        task_points(START, bad)
    assert refused.value.code == "bad_due" and "3wd" in refused.value.message


def test_a_moment_in_the_past_is_refused():
    with pytest.raises(WorkflowRefused) as refused:
        task_points(START, START - timedelta(hours=1))
    assert refused.value.code == "due_in_past"


def test_stages_follow_the_three_moments_and_stop_when_closed():
    points = task_points(START, START + timedelta(hours=10))
    assert stage_at(points, START) == 0
    assert stage_at(points, points.warn_at) == WARNED
    assert stage_at(points, points.due_at) == ESCALATED
    assert stage_at(points, points.flag_at) == FLAGGED
    assert next_check(points, 0, "open") == points.warn_at
    assert next_check(points, WARNED, "open") == points.due_at
    assert next_check(points, FLAGGED, "open") is None
    assert next_check(points, 0, "done") is None


@pytest.mark.parametrize(
    "far",
    ["999999wd", "400d", "9999h", START + timedelta(days=367), datetime(8694, 11, 26, tzinfo=UTC)],
)
def test_a_due_moment_beyond_a_year_is_refused_at_once(far):
    """Not minutes of walking the calendar, nor an overflow into a 500 (schemathesis)."""
    with pytest.raises(WorkflowRefused) as refused:
        task_points(START, far)
    assert refused.value.code == "due_too_far" and "366" in refused.value.message
    assert task_points(START, "260wd").due_at > START
