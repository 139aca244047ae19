"""What the service does with a judgement of a text (workflows.triage): the rules that join it
with what people said, pure so every channel applies them the same way and tests read them.

Danger from any source wins; a judgement raises what the reporter or partner said, never
lowers it: their categories, situations and jurisdiction are kept, the text's are added or
used where they said nothing. A non-case waits for an operator instead of being dispatched,
and an emergency is never a non-case.
"""

from dataclasses import dataclass
from typing import Any

from workflows.referrals.deadlines import levels
from workflows.triage import Judgement
from workflows.triage.judgement import REGISTERS  # noqa: F401  (dispatch reads it here)

NOT_A_CASE_LABELS = {"consultation": "疑似咨询", "not_minor": "非未成年人", "noise": "无效信息"}
# Channels whose reports arrive complete and are registered without an operator.
AUTO_REGISTER = frozenset({"webform", "110", "12345", "12355"})
# The mandatory reporters' channel (web form and its JSON twin): a text of theirs that
# suggests one of the nine situations is a mandatory report even with no box ticked.
MANDATORY_REPORTER_CHANNELS = frozenset({"webform"})


@dataclass(frozen=True)
class Decision:
    """What a new report's case is, once the text has been judged."""

    categories: list[str]
    emergency: bool
    mandatory: bool
    jurisdiction: str | None
    not_a_case: str | None
    predicted_risk: str


def not_a_case_label(reason: str | None) -> str:
    """疑似咨询 / 非未成年人 / 无效信息 (an unknown code is shown as itself)."""
    return NOT_A_CASE_LABELS.get(reason, reason) if reason else ""


def merged_categories(said: list[str], judged: list[str]) -> list[str]:
    """The person's categories first and all kept, then the text's; "other" only when
    nothing else is known."""
    found = list(dict.fromkeys([*said, *judged]))
    specific = [c for c in found if c != "other"]
    return specific or ["other"]


def higher_risk(*risks: str | None) -> str | None:
    """The most urgent of the levels given (unknown levels and None rank last)."""
    order = levels()
    known = [r for r in risks if r in order]
    return min(known, key=order.index) if known else None


def decide(
    judgement: Judgement,
    *,
    channel: str,
    categories: list[str],
    situations: list[int],
    emergency: bool,
    jurisdiction: str | None,
) -> Decision:
    """Join the text's judgement with what the reporter (or partner) said."""
    danger = emergency or judgement.emergency
    mandatory = bool(situations) or (
        channel in MANDATORY_REPORTER_CHANNELS and bool(judgement.situations)
    )
    # A person who chose a category or ticked a situation said it is a case.
    said_a_case = danger or mandatory or bool(categories)
    not_a_case = None if said_a_case else judgement.not_a_case
    top = levels()[0]
    return Decision(
        categories=merged_categories(categories, judgement.categories),
        emergency=danger,
        mandatory=mandatory,
        jurisdiction=jurisdiction or judgement.jurisdiction,
        not_a_case=not_a_case,
        predicted_risk=top if danger else (higher_risk(judgement.risk) or levels()[-1]),
    )


def auto_registers(channel: str, *, partner_review: bool, not_a_case: str | None) -> bool:
    """Whether the intake job registers (and so dispatches) the case without an operator:
    a complete report's channel, not marked for review by the partner, and a case at all."""
    from workflows.partners.forwards import auto_registered, sources  # it imports intake: late

    complete = channel in AUTO_REGISTER or (channel in sources() and auto_registered(channel))
    return complete and not partner_review and not_a_case is None


@dataclass(frozen=True)
class Rejudged:
    """A case's judged fields after its thread was judged again (SMS): raised, never lowered."""

    categories: list[str]
    jurisdiction: str | None
    not_a_case: str | None
    predicted_risk: str | None
    emergency: bool  # the new judgement sees danger (the case is raised if it was not)


def rejudge(
    judgement: Judgement,
    *,
    categories: list[str],
    jurisdiction: str | None,
    not_a_case: str | None,
    predicted_risk: str | None,
    emergency: bool,
) -> Rejudged:
    """The whole thread, judged again: new categories are added, a place is taken only if
    the case had none, and a case stays a case (a non-case becomes one when the thread says
    so, never the other way)."""
    danger = emergency or judgement.emergency
    still_not = None if danger or not_a_case is None else judgement.not_a_case
    return Rejudged(
        categories=merged_categories(categories, judgement.categories),
        jurisdiction=jurisdiction or judgement.jurisdiction,
        not_a_case=still_not,
        predicted_risk=levels()[0] if danger else higher_risk(predicted_risk, judgement.risk),
        emergency=judgement.emergency,
    )


def example_labels(
    *,
    categories: list[str],
    emergency: bool,
    situations: list[int],
    jurisdiction: str | None,
    not_a_case: str | None,
) -> dict[str, Any]:
    """A corrected case's labels in the corpus format (a non-case has no categories)."""
    return {
        "categories": [] if not_a_case else list(categories),
        "emergency": bool(emergency),
        "situations": sorted(set(situations)),
        "jurisdiction": jurisdiction,
        "not_a_case": not_a_case,
    }


def evidence_lines(evidence: dict[str, list[str]], labels: dict[str, str]) -> list[str]:
    """The evidence as short Chinese lines for the operator ("危险：正在打")."""
    heads = {"emergency": "危险", "jurisdiction": "地点", "not_a_case": "非案件"}
    lines = []
    for key, phrases in evidence.items():
        if not phrases:
            continue
        if key.startswith("category:"):
            head = labels.get(key.split(":", 1)[1], key.split(":", 1)[1])
        elif key.startswith("situation:"):
            head = f"情形{key.split(':', 1)[1]}"
        else:
            head = heads.get(key, key)
        lines.append(f"{head}：{'、'.join(dict.fromkeys(phrases))}")
    return lines
