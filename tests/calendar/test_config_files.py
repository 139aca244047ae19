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
        ("triage", "negation_window = 4", 'negation_window = "four"',
         "triage.toml: [scope] negation_window: 应为整数（现为 'four'）"),
        ("triage", "category_threshold = 0.35", "category_threshold = 35",
         "triage.toml: [engine] category_threshold: 应不大于 1（现为 35）"),
        ("triage", 'dropout = ["辍学"', 'dropout = "辍学"\nunused = ["辍学"',
         "triage.toml: [categories] dropout: 应为列表（现为 '辍学'）"),
        ("matching", "suggest = 0.5", 'suggest = "half"',
         "matching.toml: [thresholds] suggest: 应为数字（现为 'half'）"),
        ("matching", "[signals.story_similar]", "[signals.story_similarity]",
         "matching.toml: （文件顶层）: 缺少信号 [signals.story_similar]"),
        ("matching", "candidates = 100", "candidates = 0",
         "matching.toml: [windows] candidates: 应大于 0（现为 0）"),
        ("partners", 'default = "urgent"', 'default = "soon"',
         "partners.toml: [sources.110.urgency] default: 应为 normal、urgent 或 emergency"
         "（现为 'soon'）"),
        ("partners", 'in_progress = "emergency"\ndefault = "urgent"', 'in_progress = "emergency"',
         "partners.toml: [sources] 110: [urgency] 缺少 default（其他说法对应的紧急程度）"),
        ("partners", 'labels = ["非常不满意", "不满意", "基本满意", "满意", "非常满意"]',
         'labels = ["不满意", "满意"]',
         "partners.toml: [satisfaction] labels: 应为5项，从1分（最差）到5分（最好）"),
        ("partners", "timeout_seconds = 10", 'timeout_seconds = "10s"',
         "partners.toml: [feedback] timeout_seconds: 应为数字（现为 '10s'）"),
        ("places", '"990100" = ["东湖", "东湖市区", "市中心"]', '"990100" = "东湖"',
         "places.toml: [aliases] 990100: 应为列表（现为 '东湖'）"),
        ("retention", "non_case_days = 365", "non_case_days = 0",
         "retention.toml: [retention] non_case_days: 应不小于 1（现为 0）"),
        ("retention", "hour = 3", "hour = true",
         "retention.toml: [retention] hour: 应为整数（现为 True）"),
        ("retention", "batch = 1000", "batch = 1000\nbatches = 5",
         "retention.toml: [retention] batches: 未知的设置（现为 5）"),
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


def test_partners_and_matching_read_the_deployment_file_typed(fresh_config, monkeypatch):
    from workflows.matching.score import thresholds
    from workflows.partners import forwards

    (fresh_config / "partners.toml").write_text(
        _shipped("partners", "timeout_seconds = 10", "timeout_seconds = 3"), "utf-8"
    )
    (fresh_config / "matching.toml").write_text(
        _shipped("matching", "suggest = 0.5", "suggest = 0.6"), "utf-8"
    )
    monkeypatch.setenv("HOTLINE_CONFIG_DIR", str(fresh_config))
    assert forwards.delivery_timeout() == 3.0
    assert forwards.urgency_of("12345", forwards.WorkOrder.model_validate(
        {"external_id": "x", "content": "y", "received_at": "2026-12-01T08:00:00+08:00",
         "urgency": "特急"})) == "emergency"
    assert thresholds().model_dump() == {"suggest": 0.6, "very_likely": 0.9, "ledger_match": 0.9}
    assert config.matching().canvass.unseen_days == 180
