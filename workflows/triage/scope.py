"""Scope of negation, hypotheticals, reported speech/fiction and the past, within one clause.

Cue lists are in triage.toml [scope]. What each governs:
- negation ("没有", "并未", ...): the few characters after it (`negation_window`), so
  "没有打孩子" is negated but "没人管，爸爸正在打他" is not;
- hypothetical ("如果", "万一", ...): the rest of the clause; worry ("担心", "怕") likewise,
  but it is "clear" only when the clause has no sign of the present ("正在", "现在", ...);
- reported speech and fiction ("新闻里说", "电视剧", "王者荣耀", ...): the whole clause and the
  later clauses of its sentence that do not speak of the present;
- the past ("以前", "曾经"): the rest of the clause, clear only without a sign of the present.
Danger is recall-first: a danger phrase is ignored only under a *clear* scope.
"""

import re
from dataclasses import dataclass
from functools import cache

from workflows.config import schema, triage

# The mark a token gets in its feature name, by scope kind.
MARKS = {"negation": "¬", "hypothetical": "?", "reported": "»", "past": "<"}


@dataclass(frozen=True)
class Span:
    kind: str  # one of MARKS
    start: int
    end: int
    cue: str
    clear: bool  # clear enough to silence a danger phrase


@dataclass(frozen=True)
class Scope:
    spans: tuple[Span, ...]

    def at(self, start: int, length: int = 1) -> Span | None:
        """The span that governs the text at [start, start + length), if any; reported
        speech first, then hypothetical, negation, past."""
        order = ("reported", "hypothetical", "negation", "past")
        covering = [s for s in self.spans if s.start <= start < s.end]
        covering.sort(key=lambda s: order.index(s.kind))
        return covering[0] if covering else None

    def reported_cue(self) -> str | None:
        return next((s.cue for s in self.spans if s.kind == "reported"), None)

    def mark(self, start: int, length: int) -> str:
        span = self.at(start, length)
        return MARKS[span.kind] if span else ""


@cache
def _cues() -> schema.Scope:
    return triage().scope


@cache
def _alternation(words: tuple[str, ...]) -> re.Pattern[str] | None:
    if not words:
        return None
    ordered = sorted(set(words), key=lambda w: (-len(w), w))
    return re.compile("|".join(re.escape(w) for w in ordered))


def _find(text: str, cues: list[str], blocked: list[str]) -> list[tuple[int, str]]:
    """Where each cue starts (leftmost, longest first), skipping text inside a blocked word."""
    pattern = _alternation(tuple(cues))
    if pattern is None:
        return []
    block = _alternation(tuple(blocked))
    plain = block.sub(lambda m: "\0" * len(m.group(0)), text) if block else text
    return [(m.start(), m.group(0)) for m in pattern.finditer(plain)]


def clause_scopes(clause: str, reported_before: str | None = None) -> Scope:
    """The scopes in one clause. `reported_before`: the reported-speech cue of an earlier
    clause of the same sentence ("新闻里说，有个孩子被抱走了"), which governs this one too
    unless it speaks of the present."""
    cues = _cues()
    present = any(word in clause for word in cues.present)
    spans: list[Span] = []
    if reported_before and not present:
        spans.append(Span("reported", 0, len(clause), reported_before, True))
    window = cues.negation_window
    for at, cue in _find(clause, cues.negation, cues.not_negation):
        spans.append(Span("negation", at, min(len(clause), at + len(cue) + window), cue, True))
    for at, cue in _find(clause, cues.hypothetical, []):
        spans.append(Span("hypothetical", at, len(clause), cue, True))
    for at, cue in _find(clause, cues.worry, cues.not_worry):
        spans.append(Span("hypothetical", at, len(clause), cue, not present))
    for _, cue in _find(clause, cues.reported, []):
        spans.append(Span("reported", 0, len(clause), cue, True))
    for at, cue in _find(clause, cues.past, []):
        spans.append(Span("past", at, len(clause), cue, not present))
    return Scope(tuple(spans))
