"""A referral's lifecycle: 待认领 → 已认领 → 办理中 → 已办结, or 已退回 / 已撤销 / 已撤回.

`withdrawn` (已撤回) is the center's: a correction of the case made the department unneeded
(or moved it to another office); it needs a reason, which the liaison is told.

`unrouted` (no office could take it) sits outside the machine: the center routes it by hand,
which puts it in the queue. It has a label because the consoles show it.
"""

from dataclasses import dataclass
from enum import StrEnum

from statemachine import StateMachine

from workflows.errors import WorkflowRefused
from workflows.machines import Labels, require_text


class ReferralStatus(StrEnum):
    UNROUTED = "unrouted"
    QUEUED = "queued"
    CLAIMED = "claimed"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    RETURNED = "returned"
    CANCELLED = "cancelled"
    WITHDRAWN = "withdrawn"


# A referral still owed work, and one that counts as the department's share of the case.
OPEN = tuple(
    s.value
    for s in (
        ReferralStatus.UNROUTED,
        ReferralStatus.QUEUED,
        ReferralStatus.CLAIMED,
        ReferralStatus.IN_PROGRESS,
    )
)
ACTIVE = (*OPEN, ReferralStatus.COMPLETED.value)

STATUS_LABELS = {
    "unrouted": "待指派",
    "queued": "待认领",
    "claimed": "已认领",
    "in_progress": "办理中",
    "completed": "已办结",
    "returned": "已退回",
    "cancelled": "已撤销",
    "withdrawn": "已撤回",
}
EVENT_LABELS = {
    "claim": "认领",
    "release": "释放回队列",
    "start": "开始办理",
    "progress": "报告进展",
    "complete": "办结",
    "return": "退回",
    "cancel": "撤销",
    "withdraw": "撤回",
}


@dataclass
class _Referral:
    # A stored status taken over by the machine; cheaper than `start_value`, which runs
    # an initial transition first.
    status: str


LABELS = Labels(STATUS_LABELS, EVENT_LABELS, "转介状态")
_status, _event = LABELS.state, LABELS.event


class ReferralMachine(StateMachine):
    """One department's share of a case, from the queue to an outcome or a return."""

    queued = _status("queued", initial=True)
    claimed = _status("claimed")
    in_progress = _status("in_progress")
    completed = _status("completed", final=True)
    returned = _status("returned", final=True)
    cancelled = _status("cancelled", final=True)
    withdrawn = _status("withdrawn", final=True)

    claim = _event(queued.to(claimed), "claim")
    release = _event(claimed.to(queued), "release")
    start = _event(claimed.to(in_progress), "start")
    progress = _event(claimed.to(in_progress) | in_progress.to.itself(), "progress")
    complete = _event(completed.from_(claimed, in_progress, validators="needs_outcome"), "complete")
    return_ = _event(returned.from_(claimed, in_progress, validators="needs_reason"), "return")
    cancel = _event(cancelled.from_(queued, claimed, in_progress), "cancel")
    withdraw = _event(
        withdrawn.from_(queued, claimed, in_progress, validators="needs_withdraw_reason"),
        "withdraw",
    )

    def needs_outcome(self, note: str | None = None) -> None:
        require_text(note, "outcome_required", "办结需要填写办理结果")

    def needs_reason(self, note: str | None = None) -> None:
        require_text(note, "reason_required", "退回需要填写原因")

    def needs_withdraw_reason(self, note: str | None = None) -> None:
        require_text(note, "reason_required", "撤回转介需要填写原因")


def apply_referral_event(status: str, event: str, *, note: str | None = None) -> str:
    """Apply `event` to a referral's status; returns the new status.

    `note` is the outcome for complete and the reason for return and withdraw. Raises
    WorkflowRefused:
    unknown_event, transition_not_allowed, outcome_required or reason_required.
    """
    if event not in EVENT_LABELS:
        raise WorkflowRefused("unknown_event", f"未知的转介操作「{event}」")
    if status not in ReferralMachine.states_map:
        raise LABELS.refusal(status, event)
    referral = _Referral(status)
    LABELS.send(ReferralMachine, referral, "status", event, note=note)
    return referral.status
