"""The project's own configuration files (TOML), one per subject.

A deployment can override any of them by pointing `HOTLINE_CONFIG_DIR` (the environment or
`.env`, as every setting: `db.settings.Settings`) at a folder holding files of the same
names; files missing there fall back to the ones shipped here.

Each file with a model in `workflows.config.schema` is checked against it when read: a wrong
key stops the service with the file and the key named. Code reads the typed view
(`risk()`, `channels()`, `casework()`, `supervision()`, `reference()`, `triage()`,
`matching()`, `partners()`, `places()`, `retention()`); `load(name)` is the file as read (a
dict), for the file without a model (holidays: it checks itself).
"""

import tomllib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ValidationError

from db.settings import Settings
from workflows.config import schema

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
                    data = tomllib.load(fh)
                except tomllib.TOMLDecodeError as exc:
                    raise ConfigError(f"{path}: 不是有效的 TOML（{exc}）") from exc
            if name in schema.MODELS:
                try:
                    _typed[name] = (data, schema.MODELS[name].model_validate(data))
                except ValidationError as exc:
                    raise ConfigError(schema.describe(str(path), exc)) from None
            return data
    raise FileNotFoundError(f"no configuration file {name}.toml")


# The checked model of each file, beside the dict `load` returned it from: when a test (or a
# reload) clears `load`'s cache, the next read checks the new file and replaces both.
_typed: dict[str, tuple[dict[str, Any], BaseModel]] = {}


def typed(name: str) -> BaseModel:
    """The file's checked model (see `workflows.config.schema`)."""
    data = load(name)
    hit = _typed.get(name)
    if hit is None or hit[0] is not data:
        hit = _typed[name] = (data, schema.MODELS[name].model_validate(data))
    return hit[1]


M = TypeVar("M", bound=BaseModel)


def _view(name: str, model: type[M]) -> Callable[[], M]:
    """The typed accessor of one file (`risk()`, ...): `typed(name)`, as its model's type."""

    def view() -> M:
        return cast(M, typed(name))

    view.__name__ = view.__qualname__ = name
    view.__doc__ = f"The checked {name}.toml ({model.__name__})."
    return view


risk = _view("risk", schema.RiskConfig)
channels = _view("channels", schema.ChannelsConfig)
casework = _view("casework", schema.CaseworkConfig)
supervision = _view("supervision", schema.SupervisionConfig)
reference = _view("reference", schema.ReferenceConfig)
triage = _view("triage", schema.TriageConfig)
matching = _view("matching", schema.MatchingConfig)
partners = _view("partners", schema.PartnersConfig)
places = _view("places", schema.PlacesConfig)
retention = _view("retention", schema.RetentionConfig)


def path(name: str) -> Path:
    """A config file or folder other than TOML (the triage lexicon, model, corpus): the
    deployment's copy in `HOTLINE_CONFIG_DIR` when it has one, else the shipped one."""
    override = _deployment_dir()
    if override and (override / name).exists():
        return override / name
    return _HERE / name
