"""The project's own configuration files (TOML), one per subject.

A deployment can override any of them by pointing `HOTLINE_CONFIG_DIR` at a folder holding
files of the same names; files missing there fall back to the ones shipped here.
"""

import os
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

_HERE = Path(__file__).parent


@cache
def load(name: str) -> dict[str, Any]:
    """Read `<name>.toml`, preferring the deployment's folder over the shipped default."""
    override = os.environ.get("HOTLINE_CONFIG_DIR")
    for folder in ([Path(override)] if override else []) + [_HERE]:
        path = folder / f"{name}.toml"
        if path.exists():
            with path.open("rb") as fh:
                return tomllib.load(fh)
    raise FileNotFoundError(f"no configuration file {name}.toml")


def path(name: str) -> Path:
    """A config file or folder other than TOML (the triage lexicon, model, corpus): the
    deployment's copy in `HOTLINE_CONFIG_DIR` when it has one, else the shipped one."""
    override = os.environ.get("HOTLINE_CONFIG_DIR")
    if override and (Path(override) / name).exists():
        return Path(override) / name
    return _HERE / name
