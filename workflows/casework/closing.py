"""Closing to criteria: a type the deployment lists, and for red and orange cases a recent
recorded visit and a closing assessment first (unless the type means the child has left
our care: transferred, came of age, moved away, or a supervisor overrides the criteria with
a reason: the case workflow checks that role and reason)."""

from workflows import config
from workflows.errors import WorkflowRefused


def closing_types() -> dict[str, str]:
    return dict(config.casework().closing.types)


def check_closing(
    kind: str, risk_level: str | None, days_since_visit: float | None,
    days_since_assessment: float | None, *, override: bool = False,
) -> None:
    """Refused with what is missing; silent when the case may close."""
    rules = config.casework().closing
    types = closing_types()
    if kind not in types:
        raise WorkflowRefused("unknown_closing_type", f"结案类型应为：{'、'.join(types.values())}")
    if override or risk_level not in rules.strict_levels or kind in rules.exempt_types:
        return
    within = float(rules.last_visit_within_days)
    if days_since_visit is None or days_since_visit > within:
        raise WorkflowRefused(
            "last_visit_required", f"红、橙色案件结案前需要{int(within)}天内的回访记录"
        )
    if days_since_assessment is None or days_since_assessment > within:
        raise WorkflowRefused(
            "closing_assessment_required", f"红、橙色案件结案前需要{int(within)}天内的结案评估"
        )
