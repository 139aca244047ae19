"""The holiday calendar past the library's data: a deployment's holidays.toml overrides and
extends chinesecalendar, and the service warns while a year it needs is missing.

The 2027 dates below are test data for the file's format, not the State Council's notice."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from tests.fixtures.holidays import refusal
from workflows import holidays
from workflows.referrals.deadlines import add_window, parse_window
from workflows.telephony.opening_hours import day_kind

pytest_plugins = ("tests.fixtures.console", "tests.fixtures.holidays")

SH = ZoneInfo("Asia/Shanghai")

TEST_2027 = """
[2027]
notice = "测试数据"
holidays = [
  { name = "元旦", from = 2027-01-01, to = 2027-01-03 },
  { name = "测试假期", from = 2027-02-08, to = 2027-02-12 },
]
workdays = [2027-02-06]
"""


def test_the_library_answers_for_the_years_it_knows():
    assert holidays.has_data(2026)
    assert holidays.day_kind(date(2026, 10, 1)) == "holiday"
    assert holidays.day_kind(date(2026, 10, 10)) == "workday"  # 调休 Saturday
    assert holidays.day_kind(date(2026, 10, 11)) == "weekend"


def test_a_year_nobody_knows_counts_monday_to_friday_and_is_reported_missing(config_dir):
    assert not holidays.has_data(2027)
    assert holidays.day_kind(date(2027, 1, 1)) == "workday"  # a Friday, unknown
    assert holidays.missing_years(date(2026, 10, 31)) == []
    assert holidays.missing_years(date(2026, 11, 1)) == [2027]  # next year from 1 November
    assert holidays.missing_years(date(2027, 3, 1)) == [2027]
    warning = holidays.calendar_warning(date(2026, 12, 1))
    assert warning and "2027年" in warning and "holidays.toml" in warning
    assert holidays.calendar_warning(date(2026, 6, 1)) is None


def test_the_deployment_file_extends_the_calendar_and_deadlines_follow(config_dir):
    folder, reload = config_dir
    (folder / "holidays.toml").write_text(TEST_2027, encoding="utf-8")
    reload()
    assert holidays.has_data(2027)
    assert holidays.missing_years(date(2026, 12, 1)) == []
    assert holidays.day_kind(date(2027, 1, 1)) == "holiday"
    assert holidays.day_kind(date(2027, 2, 6)) == "workday"  # a Saturday worked
    assert holidays.day_kind(date(2027, 2, 9)) == "holiday"
    assert holidays.day_kind(date(2027, 2, 15)) == "workday"  # an ordinary Monday
    assert day_kind(date(2027, 1, 1)) == "holiday"  # the hotline's opening hours agree
    # 3 working days from Wednesday 30 December: 31 Dec, (1–3 Jan off), 4 and 5 January.
    start = datetime(2026, 12, 30, 10, 0, tzinfo=SH)
    assert add_window(start, parse_window("3wd")) == datetime(2027, 1, 5, 10, 0, tzinfo=SH)
    # 1 working day from Friday 5 February: Saturday 6 is worked.
    friday = datetime(2027, 2, 5, 15, 0, tzinfo=SH)
    assert add_window(friday, parse_window("1wd")) == datetime(2027, 2, 6, 15, 0, tzinfo=SH)


def test_the_deployment_file_overrides_a_year_the_library_knows(config_dir):
    folder, reload = config_dir
    (folder / "holidays.toml").write_text(
        '[2026]\nholidays = [{ name = "测试", from = 2026-11-02 }]\n', encoding="utf-8"
    )
    reload()
    assert holidays.day_kind(date(2026, 11, 2)) == "holiday"
    assert holidays.day_kind(date(2026, 10, 1)) == "workday"  # the file is the whole year


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[2027]\nholidays = [{ from = 2027-01-01 }]\n", "[2027].holidays[0]"),
        ('[2027]\nholidays = [{ name = "元旦", from = 2028-01-01 }]\n', "[2027]"),
        ('[2027]\nholidays = [{ name = "元旦", from = 2027-01-03, to = 2027-01-01 }]\n', "to"),
        ('[2027]\nworkdays = ["二月七日"]\n', "[2027].workdays"),
        ('[next]\nworkdays = []\n', "[next]"),
        ("[2027\n", "无法解析"),
    ],
)
def test_a_malformed_file_is_refused_naming_the_key(config_dir, text, named):
    assert named in refusal(config_dir, text, date(2027, 1, 1))


async def test_readiness_and_the_board_carry_the_warning_without_failing(
    client, console_client, config_dir, make_user
):
    today = datetime.now(UTC).date()
    expected = holidays.calendar_warning(today)
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    calendar = [w for w in ready.json()["warnings"] if "节假日" in w]
    assert calendar == ([expected] if expected else [])

    folder, reload = config_dir
    years = "\n".join(f"[{y}]\nholidays = []" for y in (today.year, today.year + 1))
    (folder / "holidays.toml").write_text(years, encoding="utf-8")
    reload()
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert not [w for w in ready.json()["warnings"] if "节假日" in w]

    supervisor = await console_client(await make_user("supervisor"))
    page = await supervisor.get("/console/board")
    assert page.status_code == 200 and 'id="calendar-warning"' not in page.text
    (folder / "holidays.toml").write_text("", encoding="utf-8")
    reload()
    page = await supervisor.get("/console/board")
    assert ('id="calendar-warning"' in page.text) == bool(holidays.missing_years(today))
