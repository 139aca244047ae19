"""The deployment's configuration folder: named in `.env` as well as the environment (as the
README says of every setting), and a broken file named in the error."""

import pytest

from workflows import config


@pytest.fixture
def fresh_config(monkeypatch, tmp_path):
    monkeypatch.delenv("HOTLINE_CONFIG_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    config.load.cache_clear()
    yield tmp_path
    config.load.cache_clear()


def test_a_config_dir_named_in_dotenv_is_used(fresh_config):
    deployment = fresh_config / "deploy"
    deployment.mkdir()
    (deployment / "risk.toml").write_text('[levels.red]\nlabel = "红"\n', "utf-8")
    (fresh_config / ".env").write_text(f"HOTLINE_CONFIG_DIR={deployment}\n", "utf-8")
    assert config.load("risk") == {"levels": {"red": {"label": "红"}}}
    assert config.path("risk.toml") == deployment / "risk.toml"


def test_a_broken_deployment_file_is_named_in_the_error(fresh_config, monkeypatch):
    (fresh_config / "risk.toml").write_text("[levels\n", "utf-8")
    monkeypatch.setenv("HOTLINE_CONFIG_DIR", str(fresh_config))
    with pytest.raises(config.ConfigError, match="risk.toml"):
        config.load("risk")
