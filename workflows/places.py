"""Which jurisdiction an address or a report's text is in, from the names in the reference data.

Partners' work orders often carry an address but no (or a foreign) jurisdiction code, and SMS,
calls and voicemail carry none at all; a case without a jurisdiction would go to the city's
offices instead of the district's. Each jurisdiction is known by:
- its own part of the name ("东湖市湖东区" → "湖东区", "湖东区幸福街道" → "幸福街道") and its
  full name;
- the aliases of places.toml (short forms, roads, estates, schools, landmarks);
- its stem before a generic ending followed by a place word ("光明社区" → "光明小区", "光明路"),
  tried only on text no explicit name covered.
Names are found left to right, longest first, so a name inside a longer one ("东湖" in
"东湖市第一人民医院") does not count on its own. The deepest place found wins if it is
unambiguous; a name shared by two places is settled by an ancestor also named.
"""

import re
from dataclasses import dataclass
from functools import lru_cache

from workflows import config
from workflows.reference import jurisdictions

# Generic endings of a jurisdiction's own name, and place words a bare stem must be followed by.
_ENDINGS = ("街道办事处", "街道", "社区", "村委会", "居委会", "村", "镇", "乡", "区", "县", "市")
_PLACE_WORDS = ("小区", "社区", "街道", "大街", "街", "路", "村", "镇", "乡", "新村", "花园",
                "家园", "苑", "公寓", "派出所", "小学", "中学", "学校", "幼儿园", "卫生院",
                "医院", "市场")


@dataclass(frozen=True)
class _Tree:
    parent: dict[str, str | None]
    level: dict[str, int]
    names: dict[str, list[str]]  # explicit name -> codes it may mean
    explicit: re.Pattern[str] | None
    stems: dict[str, list[str]]  # stem -> codes
    stemmed: re.Pattern[str] | None


def _pattern(words: list[str], after: str = "") -> re.Pattern[str] | None:
    if not words:
        return None
    alternation = "|".join(re.escape(w) for w in sorted(words, key=lambda w: (-len(w), w)))
    return re.compile(f"({alternation}){after}")


@lru_cache
def _tree() -> _Tree:
    segment: dict[str, str] = {}
    parent: dict[str, str | None] = {}
    level: dict[str, int] = {}
    names: dict[str, list[str]] = {}

    def name(word: str, code: str) -> None:
        if word and code not in names.setdefault(word, []):
            names[word].append(code)

    for code, full, lvl, up in jurisdictions():  # parents first
        own = full
        if up and up in segment and full.startswith(segment[up]) and full != segment[up]:
            own = full[len(segment[up]) :]
        segment[code], parent[code], level[code] = own, up, lvl
        name(own, code)
        name(full, code)
    try:
        aliases = config.places().aliases
    except FileNotFoundError:
        aliases = {}
    for code, words in aliases.items():
        if code in level:
            for word in words:
                name(word, code)
    stems: dict[str, list[str]] = {}
    for code, own in segment.items():
        for ending in _ENDINGS:
            stem = own[: -len(ending)] if own.endswith(ending) else ""
            if len(stem) >= 2:
                if code not in stems.setdefault(stem, []):
                    stems[stem].append(code)
                break
    place_words = "|".join(re.escape(w) for w in sorted(_PLACE_WORDS, key=len, reverse=True))
    return _Tree(parent, level, names, _pattern(list(names)), stems,
                 _pattern(list(stems), f"(?:{place_words})"))


def place_names() -> list[str]:
    """Every explicit name and alias of the network (for triage to leave out of its features)."""
    return list(_tree().names)


def _ancestors(code: str, parent: dict[str, str | None]) -> set[str]:
    seen: set[str] = set()
    while (code := parent.get(code)) and code not in seen:  # type: ignore[assignment]
        seen.add(code)
    return seen


def place_in_text(text: str | None) -> tuple[str, str] | None:
    """(code, the name that named it) of the deepest jurisdiction the text names, or None
    when it names none or the deepest names are ambiguous. The text should already be in
    Simplified characters (triage converts first)."""
    if not text:
        return None
    tree = _tree()
    found: dict[str, str] = {}  # code -> the longest name that matched it
    candidates: list[list[str]] = []  # per match, the codes it may mean
    blanked = text
    if tree.explicit is not None:
        for match in tree.explicit.finditer(text):
            word = match.group(1)
            candidates.append(tree.names[word])
            for code in tree.names[word]:
                if len(word) > len(found.get(code, "")):
                    found[code] = word
            blanked = blanked[: match.start()] + "\n" * len(word) + blanked[match.end() :]
    if tree.stemmed is not None:
        for match in tree.stemmed.finditer(blanked):
            codes = tree.stems[match.group(1)]
            candidates.append(codes)
            for code in codes:
                found.setdefault(code, match.group(0))
    if not found:
        return None
    for depth in sorted({tree.level[c] for c in found}, reverse=True):
        here = [c for c in found if tree.level[c] == depth]
        if len(here) > 1:  # the same name in two places: keep those with an ancestor also named
            settled = [c for c in here if _ancestors(c, tree.parent) & found.keys()]
            here = settled if len(settled) == 1 else here
        if len(here) == 1:
            return here[0], found[here[0]]
        if any(len(codes) > 1 for codes in candidates if set(codes) & set(here)):
            return None  # a shared name no ancestor settles: do not guess
    return None


def jurisdiction_from_address(address: str | None) -> str | None:
    """The deepest jurisdiction named in the address, or None when none or it is ambiguous."""
    found = place_in_text(address)
    return found[0] if found else None


def root_jurisdiction() -> str | None:
    """The one top-level jurisdiction (the city), where a place cannot be told."""
    roots = [code for code, _, _, up in jurisdictions() if not up]
    return roots[0] if len(roots) == 1 else None
