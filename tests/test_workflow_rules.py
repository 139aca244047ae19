"""The workflow rules on their own: every state × event, each guard both ways."""

import pytest

from workflows.case_workflow import (
    EVENT_LABELS,
    STATE_LABELS,
    CaseFacts,
    allowed_events,
    apply_case_event,
)
from workflows.errors import WorkflowRefused
from workflows.referral_workflow import STATUS_LABELS, apply_referral_event

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
    **{(s, "merge"): "merged"
       for s in ("discovered", "reported", "assessing", "handling", "following_up")},
    **{(s, "invalidate"): "invalid" for s in ("discovered", "reported", "assessing")},
}
# Everything a guard could ask for, so only the transition table decides.
FULL = {"reason": "理由", "into_case_id": 99}


def facts(state: str, **changes) -> CaseFacts:
    values = {"id": 1, "state": state, "risk_level": "yellow", "referral_count": 1,
              "visit_count": 1}
    values.update(changes)
    return CaseFacts(**values)


@pytest.mark.parametrize("state", list(STATE_LABELS))
@pytest.mark.parametrize("event", list(EVENT_LABELS))
def test_every_state_and_event(state, event):
    expected = ALLOWED.get((state, event))
    if expected:
        assert apply_case_event(facts(state), event, **FULL) == expected
    else:
        with pytest.raises(WorkflowRefused) as refused:
            apply_case_event(facts(state), event, **FULL)
        assert refused.value.code == "transition_not_allowed"
        assert STATE_LABELS[state] in refused.value.message
        assert EVENT_LABELS[event] in refused.value.message


def test_allowed_events_lists_the_transitions_from_a_state():
    assert set(allowed_events(facts("handling"))) == {"follow_up", "reassess", "close", "merge"}
    assert allowed_events(facts("merged")) == []


def _refusal(f: CaseFacts, event: str, **kw) -> str:
    with pytest.raises(WorkflowRefused) as refused:
        apply_case_event(f, event, **kw)
    return refused.value.code


def test_handling_needs_a_risk_level_and_a_referral():
    assert _refusal(facts("assessing", risk_level=None), "handle") == "risk_level_required"
    assert _refusal(facts("assessing", referral_count=0), "handle") == "referral_required"
    f = facts("assessing", risk_level=None)
    _refusal(f, "handle")
    assert f.state == "assessing"  # a refusal leaves the state alone


@pytest.mark.parametrize("level", ["red", "orange"])
def test_red_and_orange_close_only_after_a_visit_or_a_supervisor_override(level):
    f = facts("following_up", risk_level=level, visit_count=0)
    assert _refusal(f, "close") == "follow_up_visit_required"
    assert _refusal(f, "close", override=True, actor_role="caseworker",
                    reason="x") == "override_not_allowed"
    assert _refusal(f, "close", override=True, actor_role="supervisor") == "reason_required"
    assert apply_case_event(f, "close", override=True, actor_role="supervisor",
                            reason="家庭已迁出本市，移交迁入地") == "closed"
    assert apply_case_event(facts("following_up", risk_level=level), "close") == "closed"


@pytest.mark.parametrize("level", ["yellow", "blue"])
def test_lower_levels_close_without_a_visit(level):
    f = facts("handling", risk_level=level, visit_count=0)
    assert apply_case_event(f, "close") == "closed"


def test_invalid_merge_and_reopen_need_reasons():
    assert _refusal(facts("reported"), "invalidate") == "reason_required"
    assert _refusal(facts("reported"), "invalidate", reason="  ") == "reason_required"
    assert _refusal(facts("closed"), "reopen") == "reason_required"
    assert _refusal(facts("reported"), "merge", reason="重复") == "into_case_required"
    assert _refusal(facts("reported"), "merge", reason="重复", into_case_id=1) == (
        "into_case_required")  # not into itself
    assert _refusal(facts("reported"), "merge", into_case_id=2) == "reason_required"


def test_unknown_event():
    assert _refusal(facts("reported"), "explode") == "unknown_event"


def test_the_whole_life_of_a_case():
    f = facts("discovered", risk_level=None, referral_count=0, visit_count=0)
    apply_case_event(f, "register")
    apply_case_event(f, "assess")
    f.risk_level, f.referral_count = "orange", 2
    for event in ("handle", "follow_up", "reassess", "handle", "follow_up"):
        apply_case_event(f, event)
    f.visit_count = 1
    apply_case_event(f, "close")
    apply_case_event(f, "reopen", reason="再次发现受伤")
    assert f.state == "assessing"


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
}


@pytest.mark.parametrize("status", list(STATUS_LABELS))
@pytest.mark.parametrize("event",
                         ["claim", "release", "start", "progress", "complete", "return", "cancel"])
def test_every_referral_status_and_event(status, event):
    expected = REFERRAL_ALLOWED.get((status, event))
    if expected:
        assert apply_referral_event(status, event, note="说明") == expected
    else:
        with pytest.raises(WorkflowRefused) as refused:
            apply_referral_event(status, event, note="说明")
        assert refused.value.code == "transition_not_allowed"


@pytest.mark.parametrize("event", ["complete", "return"])
def test_completing_and_returning_need_a_text(event):
    with pytest.raises(WorkflowRefused) as refused:
        apply_referral_event("in_progress", event, note=" ")
    assert refused.value.code == "reason_required"


def test_the_documented_diagram_is_the_code():
    from workflows.diagram import TARGET, render

    assert TARGET.read_text(encoding="utf-8") == render()
