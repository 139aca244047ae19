"""First-pass triage of free text: categories and danger, by keywords from config.

One function, `classify`, so a better classifier can replace it without touching callers.
Traditional characters are converted to Simplified first (OpenCC), so 家暴 and 家暴, 霸淩
and 霸凌 match alike.
"""

from dataclasses import dataclass, field
from functools import cache

from opencc_purepy import OpenCC

from workflows.config import load

MAX_TEXT = 20_000


@dataclass(frozen=True)
class Triage:
    categories: list[str]
    emergency: bool
    matched: list[str] = field(default_factory=list)


@cache
def _converter() -> OpenCC:
    return OpenCC("t2s")


def classify(text: str) -> Triage:
    simplified = _converter().convert((text or "")[:MAX_TEXT])
    config = load("triage")
    scores: dict[str, int] = {}
    matched: list[str] = []
    for category, words in config["categories"].items():
        hits = [w for w in words if w in simplified]
        if hits:
            scores[category] = len(hits)
            matched.extend(hits)
    danger = config["danger"]
    danger_hits = [w for w in danger["keywords"] if w in simplified]
    negated = any(n in simplified for n in danger["negations"])
    matched.extend(w for w in danger_hits if w not in matched)
    categories = sorted(scores, key=lambda c: -scores[c]) or ["other"]
    return Triage(
        categories=categories, emergency=bool(danger_hits) and not negated, matched=matched
    )
