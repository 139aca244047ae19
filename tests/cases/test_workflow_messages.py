"""What staff read when the workflow refuses: each refusal's exact Chinese message, the
stored state or status named as it is (also when it is not one we know), for cases and
referrals. test_workflow_rules.py checks the codes and the transition table."""

import pytest

from workflows.cases.workflow import CaseFacts, apply_case_event
from workflows.errors import WorkflowRefused
from workflows.referrals.workflow import apply_referral_event


def facts(state: str, **changes) -> CaseFacts:
    values = {"id": 1, "state": state, "risk_level": "red", "referral_count": 1, "visit_count": 1}
    values.update(changes)
    return CaseFacts(**values)


def refused(call, *args, **kwargs) -> tuple[str, str]:
    with pytest.raises(WorkflowRefused) as refusal:
        call(*args, **kwargs)
    return refusal.value.code, refusal.value.message


@pytest.mark.parametrize(
    ("case", "event", "kwargs", "code", "message"),
    [
        (facts("assessing", risk_level=None), "handle", {},
         "risk_level_required", "开始处置前需要先评定风险等级"),
        (facts("assessing", referral_count=0), "handle", {},
         "referral_required", "开始处置前需要至少转介一个部门"),
        (facts("handling", visit_count=0), "close", {}, "follow_up_visit_required",
         "红色、橙色风险案件结案前需要至少一次回访记录，或由督导填写原因强制结案"),
        (facts("handling", visit_count=0), "close",
         {"override": True, "actor_role": "caseworker", "reason": "理由"},
         "override_not_allowed", "只有督导可以强制结案"),
        (facts("handling", visit_count=0), "close",
         {"override": True, "actor_role": "supervisor", "reason": " "},
         "reason_required", "强制结案需要督导填写原因"),
        (facts("reported"), "assess", {"override": True, "actor_role": "supervisor"},
         "override_not_allowed", "只有「结案」可以由督导强制执行"),
        (facts("reported"), "merge", {"reason": "同一儿童"},
         "into_case_required", "并案需要指定另一个案件作为主案件"),
        (facts("reported"), "merge", {"reason": "同一儿童", "into_case_id": 1},
         "into_case_required", "并案需要指定另一个案件作为主案件"),
        (facts("reported"), "merge", {"into_case_id": 2},
         "reason_required", "「并案」需要填写原因"),
        (facts("reported"), "invalidate", {}, "reason_required", "「不予受理」需要填写原因"),
        (facts("reported", mandatory=True), "invalidate", {"reason": "x"},
         "supervisor_required", "强制报告不予受理须由督导决定，请提请督导审核"),
        (facts("assessing", emergency=True, mandatory=True), "invalidate",
         {"reason": "x", "actor_role": "operator"},
         "supervisor_required", "紧急案件不予受理须由督导决定，请提请督导审核"),
        (facts("closed"), "reopen", {"reason": ""}, "reason_required", "「重新打开」需要填写原因"),
        (facts("closed"), "handle", {}, "transition_not_allowed",
         "当前状态「结案」不允许执行「开始处置」"),
        (facts("archived"), "close", {}, "transition_not_allowed",
         "当前状态「archived」不允许执行「结案」"),
        (facts("reported"), "explode", {}, "unknown_event", "未知的流程操作「explode」"),
    ],
)
def test_case_refusals_read_as_written(case, event, kwargs, code, message):
    state = case.state
    assert refused(apply_case_event, case, event, **kwargs) == (code, message)
    assert case.state == state


@pytest.mark.parametrize(
    ("status", "event", "note", "code", "message"),
    [
        ("in_progress", "complete", " ", "outcome_required", "办结需要填写办理结果"),
        ("claimed", "return", None, "reason_required", "退回需要填写原因"),
        ("completed", "claim", None,
         "transition_not_allowed", "转介状态「已办结」不允许执行「认领」"),
        ("queued", "start", None,
         "transition_not_allowed", "转介状态「待认领」不允许执行「开始办理」"),
        ("unrouted", "claim", None,
         "transition_not_allowed", "转介状态「待指派」不允许执行「认领」"),
        ("lost", "cancel", None,
         "transition_not_allowed", "转介状态「lost」不允许执行「撤销」"),
        ("claimed", "finish", None, "unknown_event", "未知的转介操作「finish」"),
    ],
)
def test_referral_refusals_read_as_written(status, event, note, code, message):
    assert refused(apply_referral_event, status, event, note=note) == (code, message)
