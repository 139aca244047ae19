"""`judge`: one judgement of a text. First version: the keyword pass and the place names of
the reference data; the trained engine replaces the inside, never the signature."""

import re

from workflows.config import load
from workflows.places import jurisdiction_from_address
from workflows.triage.judgement import Judgement
from workflows.triage.keywords import classify

# ---- TEMPORARY (triage integration): a few rules so the service's end-to-end tests have
# situations, non-cases and evidence before the trained engine lands. The engine replaces
# this whole module at merge; nothing else may rely on these rules. --------------------
_TEMP_AGE = re.compile(r"(\d{1,2})\s*(?:岁|周岁)")
_TEMP_SITUATION_2 = ("怀孕", "流产", "性侵")
_TEMP_CONSULTATION = ("请问", "需要什么材料", "怎么办理", "如何申请", "咨询一下")
_TEMP_CHILD_WORDS = ("孩子", "儿童", "小孩", "学生", "男孩", "女孩", "女生", "男生", "未成年")


def _temp_situations(text: str, categories: list[str]) -> dict[int, list[str]]:
    """Situation 2: a girl under fourteen, pregnant / abused (temporary rule)."""
    found: dict[int, list[str]] = {}
    ages = [int(a) for a in _TEMP_AGE.findall(text)]
    words = [w for w in _TEMP_SITUATION_2 if w in text]
    if "sexual_abuse" in categories and words and "女" in text and any(a < 14 for a in ages):
        found[2] = [*words, next(f"{a}岁" for a in ages if a < 14)]
    return found


def _temp_not_a_case(text: str, emergency: bool) -> tuple[str | None, list[str]]:
    """A question about paperwork is a consultation; only adults named, no child at all, is
    not about a minor (temporary rules; never for an emergency)."""
    if emergency:
        return None, []
    if asked := [w for w in _TEMP_CONSULTATION if w in text]:
        return "consultation", asked
    ages = [int(a) for a in _TEMP_AGE.findall(text)]
    if ages and min(ages) >= 18 and not any(w in text for w in _TEMP_CHILD_WORDS):
        return "not_minor", [f"{a}岁" for a in ages]
    return None, []


# ---- end TEMPORARY ----------------------------------------------------------------------


def judge(text: str, *, channel: str | None = None) -> Judgement:
    """Judge one text (a whole SMS thread is one text). `channel` may tune thresholds."""
    found = classify(text or "")
    place = jurisdiction_from_address(text)
    evidence: dict[str, list[str]] = {}
    if found.emergency:
        evidence["emergency"] = [w for w in found.matched]
    words = load("triage")["categories"]
    for code in found.categories:  # TEMPORARY: per-category evidence
        hits = [w for w in words.get(code, []) if w in (text or "")]
        if hits:
            evidence[f"category:{code}"] = hits
    situations = _temp_situations(text or "", found.categories)
    for number, phrases in situations.items():
        evidence[f"situation:{number}"] = phrases
    not_a_case, why = _temp_not_a_case(text or "", found.emergency)
    if why:
        evidence["not_a_case"] = why
    return Judgement(
        categories=found.categories,
        scores={code: 1.0 if code != "other" else 0.0 for code in found.categories},
        emergency=found.emergency,
        situations=sorted(situations),
        jurisdiction=place,
        not_a_case=not_a_case,
        risk="red" if found.emergency else ("orange" if situations else "yellow"),
        evidence=evidence,
    )
