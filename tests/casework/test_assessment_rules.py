"""The assessment form's proposal as pure rules: score thresholds, answers that call for a
level at least, refusals that name the question."""

import pytest

from workflows.casework.assessment import propose, questions
from workflows.errors import WorkflowRefused

CALM = {"guardian_duty": "able", "other_carer": "yes", "current_harm": "safe",
        "health": "good", "schooling": "in_school", "living": "adequate"}


def test_a_calm_family_is_proposed_the_lowest_level():
    proposal = propose(CALM)
    assert proposal.level == "blue" and proposal.score == 0


def test_the_score_raises_the_level():
    proposal = propose({**CALM, "guardian_duty": "weak", "schooling": "dropped"})
    assert (proposal.level, proposal.score) == ("yellow", 4)


def test_one_grave_answer_calls_for_red_whatever_the_total():
    proposal = propose({**CALM, "current_harm": "ongoing"})
    assert proposal.level == "red"
    assert any("正在或反复受到侵害" in r for r in proposal.reasons)


def test_an_answer_never_lowers_what_the_score_reached():
    many = {**CALM, "guardian_duty": "absent", "other_carer": "no", "health": "urgent",
            "schooling": "dropped"}  # 4 + 3 + 5 + 2 = 14: red by score, orange by answers
    assert propose(many).level == "red"


def test_a_missing_or_undefined_answer_is_refused_by_name():
    with pytest.raises(WorkflowRefused) as missing:
        propose({k: v for k, v in CALM.items() if k != "health"})
    assert missing.value.code == "answer_required" and "身心健康状况" in missing.value.message
    with pytest.raises(WorkflowRefused) as odd:
        propose({**CALM, "living": "palace"})
    assert odd.value.code == "unknown_answer" and "有保障" in odd.value.message


def test_every_question_has_answers_and_a_known_section():
    from workflows.casework.assessment import sections

    known = sections()
    assert {q.section for q in questions()} <= set(known)
    assert set(known) >= {"guardianship", "safety", "health", "schooling", "living"}
    assert all(len(q.answers) >= 2 for q in questions())


def test_conference_triggers_follow_the_config():
    from workflows.casework.conference import triggers

    assert triggers("yellow", 2, 1) == []
    assert triggers("red", 1, 0) == ["风险等级为红色"]
    assert triggers(None, 3, 2) == ["3个部门同时承办", "同一部门已退回转介2次"]


def test_closing_criteria_for_red_and_orange_cases():
    from workflows.casework.closing import check_closing

    check_closing("risk_removed", "yellow", None, None)  # lower levels need nothing more
    check_closing("moved_away", "red", None, None)  # the child is no longer ours to visit
    for args, code in (
        (("risk_removed", "orange", None, 1), "last_visit_required"),
        (("risk_removed", "orange", 45, 1), "last_visit_required"),
        (("risk_removed", "red", 3, None), "closing_assessment_required"),
        (("vanished", "blue", 1, 1), "unknown_closing_type"),
    ):
        with pytest.raises(WorkflowRefused) as refused:
            check_closing(*args)
        assert refused.value.code == code
    check_closing("risk_removed", "red", 3, 2)
