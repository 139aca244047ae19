"""The workflow rules on their own (no database): every state × event, each guard both ways."""

import re

import pytest

from workflows.cases.workflow import (
    EVENT_LABELS,
    STATE_LABELS,
    CaseFacts,
    allowed_events,
    apply_case_event,
)
from workflows.errors import WorkflowRefused
from workflows.referrals import workflow as referral_workflow
from workflows.referrals.workflow import STATUS_LABELS, apply_referral_event

CHINESE = re.compile(r"[\u4e00-\u9fff]")

ALLOWED = {
    ("discovered", "register"): "reported",
    ("reported", "assess"): "assessing",
    ("assessing", "handle"): "handling",
    ("handling", "follow_up"): "following_up",
    ("following_up", "reassess"): "assessing",
    ("handling", "reassess"): "assessing",
    ("handling", "close"): "closed",
    ("following_up", "close"): "closed",
    ("closed", "reopen"): "assessing",
    **{
        (state, "merge"): "merged"
        for state in ("discovered", "reported", "assessing", "handling", "following_up")
    },
    **{(state, "invalidate"): "invalid" for state in ("discovered", "reported", "assessing")},
}
# Everything a guard could ask for, so only the transition table decides.
FULL = {"reason": "理由", "into_case_id": 99}


def facts(state: str, **changes) -> CaseFacts:
    values = {"id": 1, "state": state, "risk_level": "red", "referral_count": 1, "visit_count": 1}
    values.update(changes)
    return CaseFacts(**values)


def refusal(call, *args, **kwargs) -> WorkflowRefused:
    with pytest.raises(WorkflowRefused) as refused:
        call(*args, **kwargs)
    assert CHINESE.search(refused.value.message), refused.value.message
    return refused.value


def case_refusal(f: CaseFacts, event: str, **kwargs) -> str:
    return refusal(apply_case_event, f, event, **kwargs).code


@pytest.mark.parametrize("state", list(STATE_LABELS))
@pytest.mark.parametrize("event", list(EVENT_LABELS))
def test_every_case_state_and_event(state, event):
    f = facts(state)
    expected = ALLOWED.get((state, event))
    if expected:
        assert apply_case_event(f, event, **FULL) == expected
        assert f.state == expected
        return
    for kwargs in (FULL, {}):  # a missing reason never hides that the move is not allowed
        refused = refusal(apply_case_event, f, event, **kwargs)
        assert refused.code == "transition_not_allowed"
        assert refused.message == (
            f"当前状态「{STATE_LABELS[state]}」不允许执行「{EVENT_LABELS[event]}」"
        )
        assert f.state == state


def test_the_message_reads_as_the_spec_says():
    refused = refusal(apply_case_event, facts("assessing"), "close")
    assert refused.message == "当前状态「评估」不允许执行「结案」"
    assert "transition_not_allowed" in str(refused)


@pytest.mark.parametrize("state", list(STATE_LABELS))
def test_allowed_events_are_the_transitions_from_the_state(state):
    f = facts(state)
    listed = allowed_events(f)
    assert sorted(listed) == sorted(event for (source, event) in ALLOWED if source == state)
    assert f.state == state


@pytest.mark.parametrize("state", ["bogus", "", None])
def test_an_unknown_stored_state_is_refused_not_crashed(state):
    f = facts(state)
    assert case_refusal(f, "register") == "transition_not_allowed"
    assert f.state == state  # None is not taken for the initial state
    assert allowed_events(f) == []


def test_unknown_event():
    assert case_refusal(facts("reported"), "explode") == "unknown_event"
    assert case_refusal(facts("reported"), "send") == "unknown_event"


def test_handling_needs_a_risk_level_and_a_referral():
    assert case_refusal(facts("assessing", risk_level=None), "handle") == "risk_level_required"
    assert case_refusal(facts("assessing", referral_count=0), "handle") == "referral_required"
    f = facts("assessing", risk_level=None)
    case_refusal(f, "handle")
    assert f.state == "assessing"  # a refusal leaves the state alone
    assert apply_case_event(facts("assessing", risk_level="blue"), "handle") == "handling"


@pytest.mark.parametrize("state", ["handling", "following_up"])
@pytest.mark.parametrize("level", ["red", "orange"])
def test_red_and_orange_close_only_after_a_visit_or_a_supervisor_override(state, level):
    f = facts(state, risk_level=level, visit_count=0)
    assert case_refusal(f, "close") == "follow_up_visit_required"
    assert case_refusal(f, "close", reason="x", override=True) == "override_not_allowed"
    assert (
        case_refusal(f, "close", reason="x", override=True, actor_role="caseworker")
        == "override_not_allowed"
    )
    assert case_refusal(f, "close", override=True, actor_role="supervisor") == "reason_required"
    assert (
        case_refusal(f, "close", reason=" ", override=True, actor_role="supervisor")
        == "reason_required"
    )
    assert f.state == state
    assert apply_case_event(facts(state, risk_level=level), "close") == "closed"


@pytest.mark.parametrize("role", ["supervisor", "admin"])
def test_a_supervisor_or_admin_may_override_with_a_reason(role):
    f = facts("following_up", visit_count=0)
    reason = "家庭已迁出本市，移交迁入地"
    assert apply_case_event(f, "close", override=True, actor_role=role, reason=reason) == "closed"


@pytest.mark.parametrize("level", ["yellow", "blue", None])
def test_lower_levels_close_without_a_visit(level):
    assert apply_case_event(facts("handling", risk_level=level, visit_count=0), "close") == "closed"


def test_a_caseworker_override_is_refused_even_when_not_needed():
    f = facts("handling", risk_level="blue", visit_count=0)
    assert case_refusal(f, "close", override=True, actor_role="caseworker", reason="x") == (
        "override_not_allowed"
    )


def test_override_is_only_for_closing():
    f = facts("assessing")
    assert case_refusal(f, "handle", override=True, actor_role="supervisor", reason="x") == (
        "override_not_allowed"
    )
    assert f.state == "assessing"


@pytest.mark.parametrize("event,state", [("invalidate", "reported"), ("reopen", "closed")])
def test_invalidate_and_reopen_need_a_reason(event, state):
    assert case_refusal(facts(state), event) == "reason_required"
    refused = refusal(apply_case_event, facts(state), event, reason="  ")
    assert refused.code == "reason_required"
    assert EVENT_LABELS[event] in refused.message
    assert apply_case_event(facts(state), event, reason="恶作剧来电") == ALLOWED[(state, event)]


def test_merge_needs_another_case_and_a_reason():
    f = facts("reported")
    assert case_refusal(f, "merge", reason="重复") == "into_case_required"
    assert case_refusal(f, "merge", reason="重复", into_case_id=1) == "into_case_required"
    assert case_refusal(f, "merge", into_case_id=2) == "reason_required"
    assert f.state == "reported"
    assert apply_case_event(f, "merge", reason="同一儿童重复举报", into_case_id=2) == "merged"


def test_the_whole_life_of_a_case():
    f = facts("discovered", risk_level=None, referral_count=0, visit_count=0)
    assert apply_case_event(f, "register") == "reported"
    assert apply_case_event(f, "assess") == "assessing"
    f.risk_level, f.referral_count = "orange", 2
    for event, state in [
        ("handle", "handling"),
        ("follow_up", "following_up"),
        ("reassess", "assessing"),
        ("handle", "handling"),
        ("follow_up", "following_up"),
    ]:
        assert apply_case_event(f, event) == state
    assert case_refusal(f, "close") == "follow_up_visit_required"
    f.visit_count = 1
    assert apply_case_event(f, "close") == "closed"
    assert apply_case_event(f, "reopen", reason="再次发现受伤") == "assessing"


REFERRAL_EVENTS = list(referral_workflow.EVENT_LABELS)
REFERRAL_ALLOWED = {
    ("queued", "claim"): "claimed",
    ("claimed", "release"): "queued",
    ("claimed", "start"): "in_progress",
    ("claimed", "progress"): "in_progress",
    ("in_progress", "progress"): "in_progress",
    ("claimed", "complete"): "completed",
    ("in_progress", "complete"): "completed",
    ("claimed", "return"): "returned",
    ("in_progress", "return"): "returned",
    ("queued", "cancel"): "cancelled",
    ("claimed", "cancel"): "cancelled",
    ("in_progress", "cancel"): "cancelled",
    # The center withdraws what a correction made unneeded (issue 10).
    ("queued", "withdraw"): "withdrawn",
    ("claimed", "withdraw"): "withdrawn",
    ("in_progress", "withdraw"): "withdrawn",
}


def test_the_referral_events_and_labels_are_the_specified_ones():
    assert (
        " ".join(REFERRAL_EVENTS)
        == "claim release start progress complete return cancel withdraw"
    )
    assert {
        "queued": "待认领",
        "claimed": "已认领",
        "in_progress": "办理中",
        "completed": "已办结",
        "returned": "已退回",
        "cancelled": "已撤销",
        "withdrawn": "已撤回",
    }.items() <= STATUS_LABELS.items()


@pytest.mark.parametrize("status", [*STATUS_LABELS, "bogus", None])
@pytest.mark.parametrize("event", REFERRAL_EVENTS)
def test_every_referral_status_and_event(status, event):
    expected = REFERRAL_ALLOWED.get((status, event))
    if expected:
        assert apply_referral_event(status, event, note="说明") == expected
        return
    for note in ("说明", None):
        refused = refusal(apply_referral_event, status, event, note=note)
        assert refused.code == "transition_not_allowed"
        assert referral_workflow.EVENT_LABELS[event] in refused.message


def test_referral_unknown_event():
    assert refusal(apply_referral_event, "claimed", "return_").code == "unknown_event"
    assert refusal(apply_referral_event, "claimed", "finish").code == "unknown_event"


@pytest.mark.parametrize("status", ["claimed", "in_progress"])
@pytest.mark.parametrize(
    "event,code,note",
    [
        ("complete", "outcome_required", "已落实临时监护"),
        ("return", "reason_required", "不属于本部门职责"),
    ],
)
def test_completing_needs_an_outcome_and_returning_a_reason(status, event, code, note):
    for missing in (None, "", "  "):
        assert refusal(apply_referral_event, status, event, note=missing).code == code
    assert apply_referral_event(status, event, note=note) == REFERRAL_ALLOWED[(status, event)]


def test_the_documented_diagram_is_the_code():
    from workflows.diagram import TARGET, render

    text = render()
    assert text.count("```mermaid") == 2
    assert "closed --> assessing : 重新打开" in text
    assert TARGET.read_text(encoding="utf-8") == text


@pytest.mark.parametrize("serious", [{"mandatory": True}, {"emergency": True},
                                     {"mandatory": True, "emergency": True}])
def test_a_mandatory_or_emergency_report_is_refused_by_a_supervisor_only(serious):
    for role in ("operator", "caseworker", None):
        f = facts("reported", **serious)
        assert case_refusal(f, "invalidate", reason="恶作剧", actor_role=role) == (
            "supervisor_required"
        )
        assert f.state == "reported"
    f = facts("reported", **serious)
    assert case_refusal(f, "invalidate", actor_role="supervisor") == "reason_required"
    assert apply_case_event(f, "invalidate", reason="恶作剧", actor_role="supervisor") == "invalid"
    plain = facts("reported")
    assert apply_case_event(plain, "invalidate", reason="恶作剧", actor_role="operator") == (
        "invalid"
    )
