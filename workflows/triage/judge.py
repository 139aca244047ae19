"""`judge`: one judgement of a text. First version: the keyword pass and the place names of
the reference data; the trained engine replaces the inside, never the signature."""

from workflows.places import jurisdiction_from_address
from workflows.triage.judgement import Judgement
from workflows.triage.keywords import classify


def judge(text: str, *, channel: str | None = None) -> Judgement:
    """Judge one text (a whole SMS thread is one text). `channel` may tune thresholds."""
    found = classify(text or "")
    place = jurisdiction_from_address(text)
    evidence: dict[str, list[str]] = {}
    if found.emergency:
        evidence["emergency"] = [w for w in found.matched]
    return Judgement(
        categories=found.categories,
        scores={code: 1.0 if code != "other" else 0.0 for code in found.categories},
        emergency=found.emergency,
        situations=[],
        jurisdiction=place,
        not_a_case=None,
        risk="red" if found.emergency else "yellow",
        evidence=evidence,
    )
