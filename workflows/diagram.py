"""`python -m workflows.diagram` writes docs/workflow.md: both state machines as mermaid,
exported by python-statemachine itself, so the picture cannot drift from the code."""

from pathlib import Path

from workflows.cases import workflow as case_workflow
from workflows.referrals import workflow as referral_workflow

TARGET = Path(__file__).resolve().parent.parent / "docs" / "workflow.md"


def _event_names(labels: dict[str, str]) -> str:
    # The diagram shows the Chinese names; callers send the ids.
    return " · ".join(f"`{event}` {label}" for event, label in labels.items())


def render() -> str:
    """The whole document, deterministic, so a test can compare it with the file."""
    return "\n".join(
        [
            "# 工作流程 · Workflow",
            "",
            "由 `python -m workflows.diagram` 从状态机代码生成，请勿手工编辑。",
            "",
            "Generated from `workflows/cases/workflow.py` and `workflows/referrals/workflow.py`;",
            "do not edit by hand.",
            "",
            "## 案件 · Case: 发现 → 报告 → 评估 → 处置 → 跟踪回访 → 结案",
            "",
            "开始处置需要风险等级和至少一个转介；红色、橙色案件结案需要至少一次回访，",
            "或由督导填写原因强制结案；并案、不予受理、重新打开都需要填写原因；",
            "强制报告和紧急案件的不予受理须由督导决定。",
            "",
            "Guards: `handle` needs a risk level and a referral; `close` of a red or orange case",
            "needs a follow-up visit or a supervisor's override with a reason; `merge` (into",
            "another case), `invalidate` and `reopen` need a reason; `invalidate` of a",
            "mandatory report or an emergency is a supervisor's decision.",
            "",
            f"Events: {_event_names(case_workflow.EVENT_LABELS)}",
            "",
            "```mermaid",
            format(case_workflow.CaseMachine, "mermaid").rstrip(),
            "```",
            "",
            "## 转介 · Referral",
            "",
            "办结需要填写办理结果，退回需要填写原因；认领超时无人办理时释放回队列；",
            "案件更正后不再需要的转介由中心撤回（需填写原因，并告知联络员）。",
            "",
            "`unrouted` 待指派 (no office found) lies outside the machine: the center routes it",
            "by hand. `complete` needs an outcome and `return` a reason; an idle claim is",
            "released back to the queue by the deadline sweep. `withdraw` (the center, after a",
            "correction of the case made the department unneeded) needs a reason, which the",
            "liaison is told.",
            "",
            f"Events: {_event_names(referral_workflow.EVENT_LABELS)}",
            "",
            "```mermaid",
            format(referral_workflow.ReferralMachine, "mermaid").rstrip(),
            "```",
            "",
        ]
    )


if __name__ == "__main__":
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET}")
