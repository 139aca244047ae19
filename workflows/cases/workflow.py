"""The case workflow: 发现 → 报告 → 评估 → 处置 → 跟踪回访 → 结案, with 并案 and 不予受理.

A python-statemachine `StateMachine` (not `StateChart`, which would swallow refusals) bound
to a small facts object; `apply_case_event` is the one entry point the application calls.
Guards are validators that raise `WorkflowRefused` with a code and a Chinese message, so a
refusal says why and leaves the state as it was.
"""

from dataclasses import dataclass
from enum import StrEnum

from statemachine import Event, StateMachine

from workflows.errors import WorkflowRefused
from workflows.machines import Labels, require_text


class CaseState(StrEnum):
    DISCOVERED = "discovered"
    REPORTED = "reported"
    ASSESSING = "assessing"
    HANDLING = "handling"
    FOLLOWING_UP = "following_up"
    CLOSED = "closed"
    MERGED = "merged"
    INVALID = "invalid"


# A case in one of these is finished: no referral, reply or follow-up joins it any more.
FINISHED = tuple(s.value for s in (CaseState.CLOSED, CaseState.MERGED, CaseState.INVALID))

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
VISIT_BEFORE_CLOSE = frozenset({"red", "orange"})
OVERRIDE_ROLES = frozenset({"supervisor", "admin"})
# Who may refuse (不予受理) a mandatory report or an emergency: a child reported in danger,
# or by a teacher or doctor bound to report, is not turned away on one operator's word.
# The center has no director role: its supervisor is the senior decision.
NOT_ACCEPT_SERIOUS_ROLES = frozenset({"supervisor"})


@dataclass
class CaseFacts:
    """What the guards need to know about a case; `state` is moved by the machine."""

    id: int
    state: str
    risk_level: str | None = None
    referral_count: int = 0
    visit_count: int = 0
    mandatory: bool = False
    emergency: bool = False


LABELS = Labels(STATE_LABELS, EVENT_LABELS, "当前状态")
_state, _event = LABELS.state, LABELS.event


class CaseMachine(StateMachine):
    """States and transitions of a case; guards read the bound `CaseFacts` (the model)."""

    discovered = _state("discovered", initial=True)
    reported = _state("reported")
    assessing = _state("assessing")
    handling = _state("handling")
    following_up = _state("following_up")
    closed = _state("closed")
    merged = _state("merged", final=True)
    invalid = _state("invalid", final=True)

    register = _event(discovered.to(reported), "register")
    assess = _event(reported.to(assessing), "assess")
    handle = _event(assessing.to(handling, validators="needs_risk_and_referral"), "handle")
    follow_up = _event(handling.to(following_up), "follow_up")
    reassess = _event(assessing.from_(handling, following_up), "reassess")
    close = _event(closed.from_(handling, following_up, validators="may_close"), "close")
    reopen = _event(closed.to(assessing, validators="needs_reason"), "reopen")
    merge = _event(
        merged.from_(
            discovered, reported, assessing, handling, following_up, validators="may_merge"
        ),
        "merge",
    )
    invalidate = _event(
        invalid.from_(discovered, reported, assessing, validators="may_invalidate"), "invalidate"
    )

    def needs_reason(self, event: Event, reason: str | None = None) -> None:
        require_text(reason, "reason_required", f"「{EVENT_LABELS[event.id]}」需要填写原因")

    def may_invalidate(
        self, event: Event, reason: str | None = None, actor_role: str | None = None
    ) -> None:
        if not may_offer(self.model, "invalidate", actor_role or ""):
            kind = "紧急案件" if self.model.emergency else "强制报告"
            raise WorkflowRefused(
                "supervisor_required", f"{kind}不予受理须由督导决定，请提请督导审核"
            )
        self.needs_reason(event, reason)

    def needs_risk_and_referral(self) -> None:
        if not self.model.risk_level:
            raise WorkflowRefused("risk_level_required", "开始处置前需要先评定风险等级")
        if self.model.referral_count < 1:
            raise WorkflowRefused("referral_required", "开始处置前需要至少转介一个部门")

    def may_close(
        self, reason: str | None = None, override: bool = False, actor_role: str | None = None
    ) -> None:
        if override:
            if actor_role not in OVERRIDE_ROLES:
                raise WorkflowRefused("override_not_allowed", "只有督导可以强制结案")
            require_text(reason, "reason_required", "强制结案需要督导填写原因")
            return
        if self.model.risk_level in VISIT_BEFORE_CLOSE and self.model.visit_count < 1:
            raise WorkflowRefused(
                "follow_up_visit_required",
                "红色、橙色风险案件结案前需要至少一次回访记录，或由督导填写原因强制结案",
            )

    def may_merge(
        self, event: Event, reason: str | None = None, into_case_id: int | None = None
    ) -> None:
        if into_case_id is None or into_case_id == self.model.id:
            raise WorkflowRefused("into_case_required", "并案需要指定另一个案件作为主案件")
        self.needs_reason(event, reason)


def apply_case_event(
    facts: CaseFacts,
    event: str,
    *,
    reason: str | None = None,
    into_case_id: int | None = None,
    override: bool = False,
    actor_role: str | None = None,
) -> str:
    """Apply `event` to the facts; returns the new state (also set on `facts.state`).

    Raises WorkflowRefused, checked in this order: unknown_event, override_not_allowed
    (override on anything but close), transition_not_allowed, then the transition's guards.
    """
    if event not in EVENT_LABELS:
        raise WorkflowRefused("unknown_event", f"未知的流程操作「{event}」")
    if override and event != "close":
        raise WorkflowRefused("override_not_allowed", "只有「结案」可以由督导强制执行")
    # Checked here: the library would take an unknown stored value over and fail later
    # with a bare KeyError (or, for None, silently start from the initial state).
    if facts.state not in STATE_LABELS:
        raise LABELS.refusal(facts.state, event)
    LABELS.send(
        CaseMachine,
        facts,
        "state",
        event,
        reason=reason,
        into_case_id=into_case_id,
        override=override,
        actor_role=actor_role,
    )
    return facts.state


def may_offer(facts: CaseFacts, event: str, role: str) -> bool:
    """Whether a button for `event` makes sense for this role: not 不予受理 of a mandatory
    report or an emergency to anyone but a supervisor (the guard would refuse it)."""
    if event == "invalidate" and (facts.mandatory or facts.emergency):
        return role in NOT_ACCEPT_SERIOUS_ROLES
    return True


def allowed_events(facts: CaseFacts) -> list[str]:
    """Events with a transition from the current state, for the UI's buttons.

    Guards are not evaluated: a listed event may still be refused for a missing reason,
    risk level, referral or visit, with a message that says which.
    """
    if facts.state not in STATE_LABELS:
        return []
    return [event.id for event in CaseMachine(model=facts, state_field="state").allowed_events]
