"""What the service makes of a report's text: the one shape every channel, the API and the
console share, so the engine behind `judge` can change without touching its callers."""

from dataclasses import asdict, dataclass, field
from typing import Any

# Reasons a text is not a case at all; an emergency is never one of them.
NOT_A_CASE = ("consultation", "not_minor", "noise")
# The corpus register (workflows/config/corpus/README.md) a channel's texts belong to; a
# register's name is its own (the bench and `hotline triage train` judge by register).
REGISTERS = {
    "12345": "12345",
    "12355": "12345",
    "110": "110",
    "sms": "sms",
    "webform": "mandatory",
    "voice": "call",
}


def register_of(channel: str | None) -> str | None:
    """The corpus register of a channel (or of a register's own name); None when unknown."""
    if not channel:
        return None
    return REGISTERS.get(channel) or (channel if channel in REGISTERS.values() else None)


@dataclass(frozen=True)
class Judgement:
    categories: list[str]  # category codes, best first; ["other"] when nothing is recognised
    scores: dict[str, float]  # confidence 0..1 per category in `categories`
    emergency: bool  # the text says a child is in danger now
    situations: list[int]  # mandatory-report situations 1..9 the text suggests, ascending
    jurisdiction: str | None  # the deepest jurisdiction code the text names, or None
    not_a_case: str | None  # None, or one of NOT_A_CASE
    risk: str  # predicted risk level (red, orange, yellow, blue): orders the operator's list
    # The phrases behind each decision, keyed "category:<code>", "emergency",
    # "situation:<n>", "jurisdiction", "not_a_case": what the operator is shown.
    evidence: dict[str, list[str]] = field(default_factory=dict)
    version: str = "keywords-1"  # which engine (and trained artefact) judged

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
