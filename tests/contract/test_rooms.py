"""The four rooms' one-way arrows (README, Layout; docs/architecture.md): db ← workflows ←
channels ← dispatch. A module imports only from its own room and the rooms below it.

Read line by line, not with `ast`: on Python 3.11 `ast.parse` inside a long test session
can fail with "AST constructor recursion depth mismatch" (CPython gh-106905)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ["db", "workflows", "channels", "dispatch"]
IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import\b|import\s+([\w.]+(?:\s*,\s*[\w.]+)*))")


def test_every_import_points_down_the_rooms():
    wrong = []
    for room in ROOMS:
        allowed = set(ROOMS[: ROOMS.index(room) + 1])
        for path in sorted((ROOT / room).rglob("*.py")):
            for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
                match = IMPORT.match(line)
                if not match:
                    continue
                names = [match.group(1)] if match.group(1) else match.group(2).split(",")
                for name in names:
                    top = name.strip().split(".")[0]
                    if top in ROOMS and top not in allowed:
                        wrong.append(f"{path.relative_to(ROOT)}:{number} imports {name.strip()}")
    assert not wrong, "\n".join(wrong)
