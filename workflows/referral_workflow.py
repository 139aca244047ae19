"""A referral's lifecycle: 待认领 → 已认领 → 办理中 → 已办结, or 已退回 / 已撤销.

`unrouted` (no office could take it) sits outside the machine: the center routes it by hand,
which puts it in the queue.
"""

from dataclasses import dataclass

from statemachine import State, StateMachine
from statemachine.exceptions import TransitionNotAllowed

from workflows.errors import WorkflowRefused

STATUS_LABELS = {
    "unrouted": "待指派",
    "queued": "待认领",
    "claimed": "已认领",
    "in_progress": "办理中",
    "completed": "已办结",
    "returned": "已退回",
    "cancelled": "已撤销",
}
EVENT_LABELS = {
    "claim": "认领",
    "release": "退回队列",
    "start": "开始办理",
    "progress": "记录进展",
    "complete": "办结",
    "return": "退回",
    "cancel": "撤销",
}
_NEEDS_NOTE = {"complete": "办结需要填写办理结果", "return": "退回需要填写原因"}


@dataclass
class _Referral:
    status: str


class ReferralMachine(StateMachine):
    queued = State(STATUS_LABELS["queued"], value="queued", initial=True)
    claimed = State(STATUS_LABELS["claimed"], value="claimed")
    in_progress = State(STATUS_LABELS["in_progress"], value="in_progress")
    completed = State(STATUS_LABELS["completed"], value="completed", final=True)
    returned = State(STATUS_LABELS["returned"], value="returned", final=True)
    cancelled = State(STATUS_LABELS["cancelled"], value="cancelled", final=True)

    claim = queued.to(claimed)
    release = claimed.to(queued)
    start = claimed.to(in_progress)
    progress = claimed.to(in_progress) | in_progress.to.itself()
    complete = claimed.to(completed) | in_progress.to(completed)
    return_ = claimed.to(returned) | in_progress.to(returned)
    cancel = queued.to(cancelled) | claimed.to(cancelled) | in_progress.to(cancelled)


def apply_referral_event(status: str, event: str, *, note: str | None = None) -> str:
    """Apply `event` ("return" for 退回) to a status; returns the new one."""
    if event not in EVENT_LABELS:
        raise WorkflowRefused("unknown_event", f"未知的转介操作「{event}」")
    if event in _NEEDS_NOTE and not (note and note.strip()):
        raise WorkflowRefused("reason_required", _NEEDS_NOTE[event])
    row = _Referral(status)
    if status not in ReferralMachine.states_map:
        raise WorkflowRefused(
            "transition_not_allowed",
            f"转介状态「{STATUS_LABELS.get(status, status)}」不允许执行「{EVENT_LABELS[event]}」",
        )
    try:
        ReferralMachine(model=row, state_field="status").send(
            "return_" if event == "return" else event
        )
    except TransitionNotAllowed as exc:
        raise WorkflowRefused(
            "transition_not_allowed",
            f"转介状态「{STATUS_LABELS.get(status, status)}」不允许执行「{EVENT_LABELS[event]}」",
        ) from exc
    return row.status
