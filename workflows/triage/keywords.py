"""The keyword pass of triage: categories and danger, by keywords from triage.toml.

`judge` (workflows.triage.judge) builds on it; it stays as the recall net for danger.
Traditional characters are converted to Simplified first (OpenCC t2s), so 遺書/遗书 and
霸淩/霸凌 match alike. It only suggests; an operator confirms.
"""

from dataclasses import dataclass
from functools import cache

from opencc_purepy import OpenCC

from workflows.config import triage

# Only this much of a text is read: keeps one call in milliseconds, and far below the size
# (1,000,000 chars) at which opencc_purepy converts in a multiprocessing pool.
MAX_TEXT = 20_000


@dataclass(frozen=True)
class Triage:
    categories: list[str]  # best first; ["other"] when nothing is recognised
    emergency: bool
    matched: list[str]  # the keywords that fired, in the categories' order, then danger's


@cache
def _t2s() -> OpenCC:
    """Built on first use (~40 ms, mostly loading the dictionaries), then shared."""
    return OpenCC("t2s")


def _found(words: list[str], text: str) -> list[str]:
    return [word for word in words if word in text]


def classify(text: str) -> Triage:
    # t2s() rather than convert(): convert() returns its error message as the text.
    simplified = _t2s().t2s(text[:MAX_TEXT]) if text and text.strip() else ""
    config = triage()
    hits = {category: found for category, words in config.categories.items()
            if (found := _found(words, simplified))}
    ranked = sorted(hits, key=lambda category: -len(hits[category]))  # stable: ties in config order
    calm = simplified
    for phrase in config.danger.harmless:
        calm = calm.replace(phrase, "\n")
    alarms = _found(config.danger.keywords, calm)
    matched = list(dict.fromkeys([w for category in ranked for w in hits[category]] + alarms))
    return Triage(categories=ranked or ["other"], emergency=bool(alarms), matched=matched)
