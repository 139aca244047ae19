"""The case workflow: 发现 → 报告 → 评估 → 处置 → 跟踪回访 → 结案, with 并案 and 不予受理.

A python-statemachine `StateMachine` (not `StateChart`, which would swallow refusals) bound
to a small facts object; `apply_case_event` is the one entry point the application calls.
Guards raise `WorkflowRefused` with a code and a Chinese message; the state then stays.
"""

from dataclasses import dataclass

from statemachine import State, StateMachine
from statemachine.exceptions import TransitionNotAllowed

from workflows.errors import WorkflowRefused

STATE_LABELS = {
    "discovered": "发现",
    "reported": "报告/受理",
    "assessing": "评估",
    "handling": "处置",
    "following_up": "跟踪回访",
    "closed": "结案",
    "merged": "并案",
    "invalid": "不予受理",
}
EVENT_LABELS = {
    "register": "登记受理",
    "assess": "开始评估",
    "handle": "开始处置",
    "follow_up": "转入跟踪回访",
    "reassess": "重新评估",
    "close": "结案",
    "reopen": "重新打开",
    "merge": "并案",
    "invalidate": "不予受理",
}
# Levels whose cases may not close without a visit (or a supervisor's override).
VISIT_BEFORE_CLOSE = ("red", "orange")
OVERRIDE_ROLES = ("supervisor", "admin")


@dataclass
class CaseFacts:
    """What the guards need to know about a case; `state` is moved by the machine."""

    id: int
    state: str
    risk_level: str | None = None
    referral_count: int = 0
    visit_count: int = 0


class CaseMachine(StateMachine):
    discovered = State(STATE_LABELS["discovered"], value="discovered", initial=True)
    reported = State(STATE_LABELS["reported"], value="reported")
    assessing = State(STATE_LABELS["assessing"], value="assessing")
    handling = State(STATE_LABELS["handling"], value="handling")
    following_up = State(STATE_LABELS["following_up"], value="following_up")
    closed = State(STATE_LABELS["closed"], value="closed")
    merged = State(STATE_LABELS["merged"], value="merged", final=True)
    invalid = State(STATE_LABELS["invalid"], value="invalid", final=True)

    register = discovered.to(reported)
    assess = reported.to(assessing)
    handle = assessing.to(handling, validators="needs_risk_and_referral")
    follow_up = handling.to(following_up)
    reassess = following_up.to(assessing) | handling.to(assessing)
    close = handling.to(closed, validators="may_close") | following_up.to(
        closed, validators="may_close"
    )
    reopen = closed.to(assessing, validators="needs_reason")
    merge = (
        discovered.to(merged, validators="may_merge")
        | reported.to(merged, validators="may_merge")
        | assessing.to(merged, validators="may_merge")
        | handling.to(merged, validators="may_merge")
        | following_up.to(merged, validators="may_merge")
    )
    invalidate = (
        discovered.to(invalid, validators="needs_reason")
        | reported.to(invalid, validators="needs_reason")
        | assessing.to(invalid, validators="needs_reason")
    )

    def needs_reason(self, reason: str | None = None) -> None:
        if not (reason and reason.strip()):
            raise WorkflowRefused("reason_required", "此操作需要填写原因")

    def needs_risk_and_referral(self) -> None:
        if not self.model.risk_level:
            raise WorkflowRefused("risk_level_required", "开始处置前需要先评定风险等级")
        if self.model.referral_count < 1:
            raise WorkflowRefused("referral_required", "开始处置前需要至少一个转介")

    def may_close(
        self, reason: str | None = None, override: bool = False, actor_role: str | None = None
    ) -> None:
        if self.model.risk_level not in VISIT_BEFORE_CLOSE or self.model.visit_count > 0:
            return
        if not override:
            raise WorkflowRefused(
                "follow_up_visit_required",
                "红色、橙色案件结案前需要至少一次回访记录，或由督导说明理由后强制结案",
            )
        if actor_role not in OVERRIDE_ROLES:
            raise WorkflowRefused("override_not_allowed", "只有督导可以强制结案")
        self.needs_reason(reason)

    def may_merge(self, reason: str | None = None, into_case_id: int | None = None) -> None:
        if into_case_id is None or into_case_id == self.model.id:
            raise WorkflowRefused("into_case_required", "并案需要指定另一个案件")
        self.needs_reason(reason)


def _machine(facts: CaseFacts) -> CaseMachine:
    return CaseMachine(model=facts, state_field="state")


def apply_case_event(
    facts: CaseFacts,
    event: str,
    *,
    reason: str | None = None,
    into_case_id: int | None = None,
    override: bool = False,
    actor_role: str | None = None,
) -> str:
    """Apply `event` to the facts; returns the new state or raises WorkflowRefused."""
    if event not in EVENT_LABELS:
        raise WorkflowRefused("unknown_event", f"未知的流程操作「{event}」")
    machine = _machine(facts)
    try:
        machine.send(
            event,
            reason=reason,
            into_case_id=into_case_id,
            override=override,
            actor_role=actor_role,
        )
    except TransitionNotAllowed as exc:
        state = STATE_LABELS.get(facts.state, facts.state)
        raise WorkflowRefused(
            "transition_not_allowed", f"当前状态「{state}」不允许执行「{EVENT_LABELS[event]}」"
        ) from exc
    return facts.state


def allowed_events(facts: CaseFacts) -> list[str]:
    """Events with a transition from the current state (guards are checked on send)."""
    return [e.id for e in _machine(CaseFacts(**vars(facts))).allowed_events]
