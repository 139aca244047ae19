"""What the classifier sees of a prepared text: the same list of feature names in training and
at run time.

- `w:<token>`: jieba tokens (domain lexicon included), prefixed by their scope mark when a
  cue governs them (`w:¬打孩子`, `w:?被拐`, `w:»人贩子`), so "没有打孩子" and "正在打孩子"
  are different evidence;
- `c:<n-gram>`: character 1–3-grams within a clause (robust to typos, dialect words and
  segmentation mistakes, which SMS is full of), scope-marked like the words;
- a register's boilerplate (接警, 报警人称, 市民来电反映, 诉求 ... triage.toml [engine]
  boilerplate) and the network's place names are left out of words and n-grams: they tell
  who wrote and where, not what happened, and would teach the model "110 means danger" or
  "湖滨 means danger" (places are read by workflows.places); so are runs of four or more
  Latin letters or digits (phone and ID numbers, plates, order and reference codes): they
  name a thing, not what happened, and their n-grams flipped categories at random (a test
  text with a random hex suffix was judged a second category 2 times in 5);
- `kw:<tag>`: the domain lexicon's concepts (triage_lexicon.txt tags), scope-marked too;
- `age:<band>` for each stated age (under 14 / 14–17 / adult), `danger:rule` when a danger
  phrase fires, `scope:<kind>` for each scope present.
"""

import re
from functools import cache

from workflows.config import triage
from workflows.places import place_names
from workflows.triage.scope import MARKS
from workflows.triage.text import Prepared

_SKIP = set(" \t\r\n\0")
# Lexicon concepts count this many times: a handful of them must weigh against the hundreds
# of n-grams of a text (the rows are L2-normalised, tf is 1 + ln count).
CONCEPT_REPEAT = 4
_NOT_CROSSED = {"now", "done", "minor", "adult", "consult", "noise", "fiction"}


def _band(age: int) -> str:
    return "<14" if age < 14 else "14-17" if age < 18 else "18+"


@cache
def _boilerplate() -> re.Pattern[str] | None:
    words = triage().engine.boilerplate + place_names()
    if not words:
        return None
    ordered = sorted(set(words), key=lambda w: (-len(w), w))
    return re.compile("|".join(re.escape(w) for w in ordered))


_CODES = re.compile(r"[a-z0-9]{4,}")


def _blank(match: re.Match[str]) -> str:
    return "\0" * len(match.group(0))


def _strip(text: str) -> str:
    pattern = _boilerplate()
    text = pattern.sub(_blank, text) if pattern else text
    return _CODES.sub(_blank, text)


def features(prepared: Prepared, danger_fired: bool) -> list[str]:
    out: list[str] = []
    kinds: set[str] = set()
    for clause in prepared.clauses:
        text = _strip(clause.text)
        at = 0
        for token, mark in clause.tokens:
            kept = text[at : at + len(token)] == token
            at += len(token)
            if kept and token.strip() and not (len(token) == 1 and not token.isalnum()):
                out.append(f"w:{mark}{token}")
        marks = [clause.scope.mark(i, 1) for i in range(len(text))] if clause.scope.spans else None
        for n in (1, 2, 3):
            for i in range(len(text) - n + 1):
                gram = text[i : i + n]
                if not _SKIP.intersection(gram):
                    out.append(f"c:{marks[i] if marks else ''}{gram}")
        for tag, _, mark in clause.concepts:
            if tag != "now":  # the present on its own says nothing; crossed below it does
                out += [f"kw:{mark}{tag}"] * CONCEPT_REPEAT
        kinds.update(span.kind for span in clause.scope.spans)
    # Danger is a concept *now*: each concept of a text that speaks of the present, crossed.
    tags = {tag for clause in prepared.clauses for tag, _, mark in clause.concepts if not mark}
    if "now" in tags:
        out += [f"x:now+{tag}" for tag in sorted(tags - _NOT_CROSSED)] * CONCEPT_REPEAT
    # ... and the harm as past or dealt with, the child away from it now (送医, 已返校, 上个月).
    # The past cues (上个月, 以前) are under their own past scope: they count unless negated.
    if any(tag == "done" and mark in ("", MARKS["past"]) for clause in prepared.clauses
           for tag, _, mark in clause.concepts):
        out += [f"x:done+{tag}" for tag in sorted(tags - _NOT_CROSSED)] * CONCEPT_REPEAT
    out += [f"age:{_band(age)}" for age in prepared.ages]
    out += [f"scope:{MARKS[kind]}" for kind in sorted(kinds)]
    if danger_fired:
        out.append("danger:rule")
    return out


def readable(feature: str) -> str | None:
    """The phrase an operator can see for a feature, or None for features that are not text
    (ages, scope marks) or that are negated/hypothetical (not evidence *for* anything)."""
    kind, _, rest = feature.partition(":")
    if kind == "c":
        if rest and rest[0] in MARKS.values():
            return None
        return rest if len(rest) >= 2 else None
    if kind == "w":
        if rest and rest[0] in MARKS.values():
            return None
        return rest if len(rest) >= 2 else None
    return None
