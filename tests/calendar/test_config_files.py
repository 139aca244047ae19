"""The deployment's configuration folder: named in `.env` as well as the environment (as the
README says of every setting), each file checked against its model when read, and a broken
file named in the error with the key that is wrong."""

from pathlib import Path

import pytest

from workflows import config
from workflows.telephony import opening_hours

SHIPPED = Path(config.__file__).parent


@pytest.fixture
def fresh_config(monkeypatch, tmp_path):
    monkeypatch.delenv("HOTLINE_CONFIG_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    config.load.cache_clear()
    yield tmp_path
    monkeypatch.undo()
    config.load.cache_clear()


def _shipped(name: str, old: str, new: str) -> str:
    text = (SHIPPED / f"{name}.toml").read_text("utf-8")
    assert old in text
    return text.replace(old, new)


def test_a_config_dir_named_in_dotenv_is_used(fresh_config):
    deployment = fresh_config / "deploy"
    deployment.mkdir()
    (deployment / "risk.toml").write_text(
        _shipped("risk", 'timezone = "Asia/Shanghai"', 'timezone = "Asia/Urumqi"'), "utf-8"
    )
    (fresh_config / ".env").write_text(f"HOTLINE_CONFIG_DIR={deployment}\n", "utf-8")
    assert config.risk().timezone == "Asia/Urumqi"
    assert config.load("risk")["timezone"] == "Asia/Urumqi"
    assert config.path("risk.toml") == deployment / "risk.toml"


def test_a_broken_deployment_file_is_named_in_the_error(fresh_config, monkeypatch):
    (fresh_config / "risk.toml").write_text("[levels\n", "utf-8")
    monkeypatch.setenv("HOTLINE_CONFIG_DIR", str(fresh_config))
    with pytest.raises(config.ConfigError, match="risk.toml"):
        config.load("risk")


@pytest.mark.parametrize(
    ("name", "old", "new", "message"),
    [
        ("risk", 'claim = "30m"', 'claim = "x"',
         "risk.toml: [red] claim: 应为时长，如 30m、4h、7d、3wd（现为 'x'）"),
        ("risk", "warn_before_fraction = 0.25", 'warn_before_fraction = "x"',
         "risk.toml: warn_before_fraction: 应为数字（现为 'x'）"),
        ("risk", 'timezone = "Asia/Shanghai"', 'timezone = "Mars/Olympus"',
         "risk.toml: timezone: 应为时区名，如 Asia/Shanghai（现为 'Mars/Olympus'）"),
        ("channels", "max_reply_chars = 500", 'max_reply_chars = "x"',
         "channels.toml: [sms] max_reply_chars: 应为整数（现为 'x'）"),
        ("channels", 'workday = ["08:00-22:00"]', 'workday = ["08:00-22:00", "22:00-08:00"]',
         "channels.toml: [hotline.hours] workday 第2项: 应为时段，如 08:00-22:00"
         "（现为 '22:00-08:00'）"),
        ("channels", "max_block_hours = 720\n", "\n",
         "channels.toml: [voice] max_block_hours: 缺少此项"),
        ("casework", "min_departments = 3", "min_departments = 0",
         "casework.toml: [conference] min_departments: 应大于 0（现为 0）"),
        ("supervision", "max_days = 90", "max_days = 9.5",
         "supervision.toml: [orders] max_days: 应为整数（现为 9.5）"),
    ],
)
def test_a_wrong_key_in_a_deployment_file_is_named_with_its_file(
    fresh_config, monkeypatch, name, old, new, message
):
    (fresh_config / f"{name}.toml").write_text(_shipped(name, old, new), "utf-8")
    monkeypatch.setenv("HOTLINE_CONFIG_DIR", str(fresh_config))
    with pytest.raises(config.ConfigError) as refused:
        config.load(name)
    assert str(refused.value) == f"{fresh_config / name}.toml: {message.split(': ', 1)[1]}"


def test_the_code_reads_the_deployment_file_s_values_as_typed(fresh_config, monkeypatch):
    (fresh_config / "channels.toml").write_text(
        _shipped("channels", 'weekend = ["09:00-17:00"]', "weekend = []"), "utf-8"
    )
    monkeypatch.setenv("HOTLINE_CONFIG_DIR", str(fresh_config))
    assert config.channels().hotline.hours.weekend == []
    assert config.channels().sms.max_reply_chars == 500
    assert "周末休息" in opening_hours.describe()
