"""When a case conference (个案会商) should be called: the deployment's triggers."""

from workflows import config
from workflows.referrals.deadlines import LEVEL_LABELS


def triggers(risk_level: str | None, departments: int, most_returns: int) -> list[str]:
    """The reasons (Chinese, for the case page) a conference is proposed; empty for none."""
    rules = config.casework().conference
    reasons = []
    if risk_level and risk_level in rules.levels:
        reasons.append(f"风险等级为{LEVEL_LABELS.get(risk_level, risk_level)}色")
    if departments >= rules.min_departments:
        reasons.append(f"{departments}个部门同时承办")
    if most_returns >= rules.returns:
        reasons.append(f"同一部门已退回转介{most_returns}次")
    return reasons
