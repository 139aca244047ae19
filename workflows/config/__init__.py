"""The project's own configuration files (TOML), one per subject.

A deployment can override any of them by pointing `HOTLINE_CONFIG_DIR` (the environment or
`.env`, as every setting: `db.settings.Settings`) at a folder holding files of the same
names; files missing there fall back to the ones shipped here.
"""

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from db.settings import Settings

_HERE = Path(__file__).parent


class ConfigError(tomllib.TOMLDecodeError):
    """A deployment's configuration file that cannot be read, naming the file and what is
    wrong, so the operator knows what to fix before the service starts. A TOML error still
    (the holiday calendar names the key for its own file)."""


def _deployment_dir() -> Path | None:
    return Settings().hotline_config_dir


@cache
def load(name: str) -> dict[str, Any]:
    """Read `<name>.toml`, preferring the deployment's folder over the shipped default."""
    override = _deployment_dir()
    for folder in ([override] if override else []) + [_HERE]:
        path = folder / f"{name}.toml"
        if path.exists():
            with path.open("rb") as fh:
                try:
                    return tomllib.load(fh)
                except tomllib.TOMLDecodeError as exc:
                    raise ConfigError(f"{path}: 不是有效的 TOML（{exc}）") from exc
    raise FileNotFoundError(f"no configuration file {name}.toml")


def path(name: str) -> Path:
    """A config file or folder other than TOML (the triage lexicon, model, corpus): the
    deployment's copy in `HOTLINE_CONFIG_DIR` when it has one, else the shipped one."""
    override = _deployment_dir()
    if override and (override / name).exists():
        return override / name
    return _HERE / name
