"""Holiday calendar rules at their edges: ordinary weekends in a deployment's year and in a
year nobody knows, years before the library's data, the warning naming several missing
years, and malformed entries refused with the key named (never a bare crash)."""

from datetime import date

import pytest

from tests.fixtures.holidays import refusal
from workflows import holidays

pytest_plugins = ("tests.fixtures.holidays",)

TEST_2098 = """
[2098]
notice = "测试数据"
holidays = [{ name = "测试假期", from = 2098-02-09, to = 2098-02-10 }]
workdays = [2098-02-08]
"""


def test_a_deployment_year_keeps_ordinary_weekends_and_weekdays(config_dir):
    folder, reload = config_dir
    (folder / "holidays.toml").write_text(TEST_2098, encoding="utf-8")
    reload()
    assert holidays.day_kind(date(2098, 2, 8)) == "workday"  # a Saturday made a working day
    assert holidays.day_kind(date(2098, 2, 9)) == "holiday"
    assert holidays.day_kind(date(2098, 2, 14)) == "workday"  # a Friday
    assert holidays.day_kind(date(2098, 2, 15)) == "weekend"  # an ordinary Saturday
    assert holidays.day_kind(date(2098, 2, 16)) == "weekend"  # and Sunday


def test_a_year_nobody_knows_has_weekends_too(config_dir):
    assert holidays.day_kind(date(2099, 1, 2)) == "workday"  # Friday
    assert holidays.day_kind(date(2099, 1, 3)) == "weekend"
    assert not holidays.is_workday(date(2099, 1, 4))


def test_years_before_the_library_s_data_are_missing(config_dir):
    assert holidays.has_data(2004)
    assert not holidays.has_data(2003)
    assert holidays.missing_years(date(2003, 6, 1)) == [2003]


def test_the_warning_names_every_missing_year(config_dir):
    warning = holidays.calendar_warning(date(2098, 11, 1))
    assert warning is not None
    assert warning.startswith("节假日数据缺少2098年、2099年：")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('[2098]\nholidays = ["2098-01-01"]\n', "[2098].holidays[0]: 需要 name"),
        ('[2098]\nholidays = [{ name = "元旦" }]\n', "[2098].holidays[0]: from/to"),
        ('[2098]\nholidays = [{ name = "元旦", from = 2098-01-01, to = "2098-01-03" }]\n',
         "[2098].holidays[0]: from/to"),
        ('[2098]\nholidays = [{ name = "元旦", from = "2098-01-01", to = 2098-01-03 }]\n',
         "[2098].holidays[0]: from/to"),
    ],
)
def test_a_malformed_entry_is_refused_naming_it(config_dir, text, named):
    assert named in refusal(config_dir, text, date(2098, 1, 1))
