"""The help plan (一案一策): which department leads each need, and what a new plan changes.

The table of needs is the deployment's (casework.toml); a need it does not list is refused
with the list of those it does, never dropped.
"""

from dataclasses import dataclass

from workflows import config
from workflows.errors import WorkflowRefused


@dataclass(frozen=True)
class Need:
    name: str
    lead: str
    cooperating: tuple[str, ...]
    due: str  # a window from adoption ("5wd")


def needs_table() -> dict[str, Need]:
    """The deployment's needs, in its order."""
    return {
        name: Need(name, row.lead, tuple(row.cooperating), row.due)
        for name, row in config.casework().needs.items()
    }


def need_names() -> tuple[str, ...]:
    return tuple(needs_table())


def plan_needs(needs: list[str]) -> list[Need]:
    """The plan's needs, each once, in the order given; refused when empty or unknown."""
    table = needs_table()
    wanted = list(dict.fromkeys(n.strip() for n in needs if n and n.strip()))
    if not wanted:
        raise WorkflowRefused("needs_required", "帮扶计划至少需要一项需求")
    unknown = [n for n in wanted if n not in table]
    if unknown:
        raise WorkflowRefused(
            "unknown_need",
            f"未知的需求：{'、'.join(unknown)}；可选：{'、'.join(table)}",
        )
    return [table[n] for n in wanted]


def needs_approval(risk_level: str | None) -> bool:
    """Red and orange plans (by default) wait for a supervisor before referrals go out."""
    return risk_level in config.casework().approval_levels


@dataclass(frozen=True)
class Replan:
    kept: list[str]  # departments whose referral stays
    added: list[str]  # departments that need a referral
    dropped: list[str]  # departments the new plan no longer leads: their referrals withdrawn


def replan(before: list[Need], after: list[Need]) -> Replan:
    """What a new plan changes in the lead departments of the one it replaces."""
    old = list(dict.fromkeys(n.lead for n in before))
    new = list(dict.fromkeys(n.lead for n in after))
    return Replan(
        kept=[d for d in new if d in old],
        added=[d for d in new if d not in old],
        dropped=[d for d in old if d not in new],
    )
