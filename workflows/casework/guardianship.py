"""Guardianship, placements and the steps against a failing guardian, as rules.

Placements have a kind the deployment lists, a start and (when over) an end not before it.
The intervention steps (劝诫 → 训诫 → 处罚 → 撤销监护资格诉讼) are a sequence: each is taken by
one of its departments (police for 训诫, the court's side for revocation), and a step taken
before the one ahead of it has been recorded needs the reason it was skipped (grave harm).
"""

from dataclasses import dataclass
from datetime import date

from workflows import config
from workflows.errors import WorkflowRefused
from workflows.reference import allowed, department_labels


@dataclass(frozen=True)
class Step:
    code: str
    label: str
    departments: tuple[str, ...]


def placement_kinds() -> dict[str, str]:
    return dict(config.casework().placements)


def steps() -> list[Step]:
    return [
        Step(s.code, s.label, tuple(s.departments))
        for s in config.casework().interventions
    ]


def check_placement(kind: str, start: date, end: date | None) -> None:
    kinds = placement_kinds()
    if kind not in kinds:
        raise WorkflowRefused("unknown_kind", f"安置类型应为：{allowed(kinds)}")
    if end is not None and end < start:
        raise WorkflowRefused("end_before_start", "结束日期不能早于开始日期")


def check_step(code: str, department: str, taken: list[str], skip_reason: str | None) -> Step:
    """The step, if `department` may take it now given the steps already `taken`."""
    order = steps()
    codes = [s.code for s in order]
    if code not in codes:
        choices = allowed({s.code: s.label for s in order})
        raise WorkflowRefused("unknown_step", f"干预措施应为：{choices}")
    step = order[codes.index(code)]
    if department not in step.departments:
        who = "、".join(department_labels().get(d, d) for d in step.departments)
        raise WorkflowRefused("wrong_department", f"「{step.label}」应由{who}作出")
    before = codes[: codes.index(code)]
    missing = [c for c in before if c not in taken]
    if missing and not (skip_reason or "").strip():
        labels = "、".join(order[codes.index(c)].label for c in missing)
        raise WorkflowRefused("step_skipped", f"尚未记录「{labels}」，跨越前序措施需要说明理由")
    return step
