"""The assessment form's rules: every question answered with one of its defined answers,
and the risk level the answers propose.

The form is the deployment's (casework.toml [assessment]). The proposal is the most urgent
of the levels the answers call for and of the level the total score reaches; the caseworker
accepts it or sets another level with a reason (the written assessment keeps both).
"""

from dataclasses import dataclass

from workflows import config
from workflows.errors import WorkflowRefused
from workflows.referrals.deadlines import levels


@dataclass(frozen=True)
class Answer:
    code: str
    label: str
    score: int
    level: str | None


@dataclass(frozen=True)
class Question:
    section: str
    code: str
    label: str
    answers: tuple[Answer, ...]


@dataclass(frozen=True)
class Proposal:
    level: str
    score: int
    reasons: tuple[str, ...]  # the answers that set the level, for the written assessment


def sections() -> dict[str, str]:
    return dict(config.casework().assessment.sections)


def questions() -> list[Question]:
    """The form's questions in order, each with its answers."""
    return [
        Question(
            q.section,
            q.code,
            q.label,
            tuple(Answer(a.code, a.label, a.points, a.level) for a in q.answers),
        )
        for q in config.casework().assessment.questions
    ]


def _urgency(level: str) -> int:
    """Smaller is more urgent; a level this deployment does not use counts as none."""
    known = levels()
    return known.index(level) if level in known else len(known)


def propose(answers: dict[str, str]) -> Proposal:
    """The level the answers propose; refused, naming the question, when one is missing or
    answered with something the form does not define."""
    chosen: list[tuple[Question, Answer]] = []
    for q in questions():
        code = answers.get(q.code)
        if not code:
            raise WorkflowRefused("answer_required", f"请回答：{q.label}")
        match = next((a for a in q.answers if a.code == code), None)
        if match is None:
            allowed = "、".join(a.label for a in q.answers)
            raise WorkflowRefused("unknown_answer", f"「{q.label}」的回答应为：{allowed}")
        chosen.append((q, match))
    score = sum(a.score for _, a in chosen)
    known = levels()
    by_score = next(
        (
            lv
            for lv, floor in config.casework().assessment.thresholds
            if lv in known and score >= floor
        ),
        known[-1],
    )
    level, reasons = by_score, [f"总分{score}"]
    for q, a in chosen:
        if a.level and _urgency(a.level) < _urgency(level):
            level, reasons = a.level, [f"{q.label}：{a.label}"]
        elif a.level and a.level == level:
            reasons.append(f"{q.label}：{a.label}")
    return Proposal(level, score, tuple(reasons))
