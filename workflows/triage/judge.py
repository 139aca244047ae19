"""`judge`: one judgement of a text, by the trained model and the rules beside it.

- Categories: first the best of the primary head's probability plus `primary_blend` times
  the category's own (one-vs-rest) probability, then further categories whose own
  probability reaches `category_threshold`; with no model, the keyword rules rank them.
- Danger is recall-first: an emergency when a danger phrase fires outside a clear scope
  (rules.py) OR the model's probability reaches the trained threshold.
- An emergency is never a non-case; a non-case needs the model's reasons together to reach
  `not_a_case_threshold` (or a text with nothing in it).
- Situations: the model's heads plus the facts the rules read (怀孕 + under 14 → 2).
- Jurisdiction: workflows.places on the normalised text.
- Evidence: the rule phrases and the text's strongest model features for each decision.
Thresholds are in triage.toml [engine], overridable per channel ([engine.channel.<name>]).
"""

import re

import numpy as np

from workflows.config import schema, triage
from workflows.places import place_in_text
from workflows.triage import rules
from workflows.triage.features import features, readable
from workflows.triage.judgement import Judgement, register_of
from workflows.triage.model import Model, model
from workflows.triage.text import Prepared, cn_number, prepare

RULES_VERSION = "rules-1"
_SERIOUS = {"sexual_abuse", "trafficking", "domestic_violence", "mental_crisis"}
_MEANINGFUL = re.compile(r"[\u4e00-\u9fff]")


def _settings(channel: str | None) -> schema.Engine:
    """[engine] with the channel's own [engine.channel.<channel>] keys over it."""
    engine = triage().engine
    override = engine.channel.get(channel or "")
    if override is None:
        return engine
    return engine.model_copy(update=override.model_dump(exclude_none=True))


def _phrases(features_: list[str], prepared: Prepared, limit: int = 5) -> list[str]:
    """Readable phrases for an operator, strongest first: the lexicon's words behind a
    concept, whole jieba words, and only when those are too few, character 3-grams; none
    inside another already chosen."""
    chosen: list[str] = []

    def add(phrase: str) -> None:
        if (len(chosen) < limit and phrase in prepared.text
                and not any(phrase in c or c in phrase for c in chosen)):
            chosen.append(phrase)

    for feature in features_:
        if feature.startswith("kw:") and feature[3:].isalpha() and feature != "kw:minor":
            for word in concept_words(prepared, feature[3:]):
                add(word)
        elif feature.startswith("w:") and (phrase := readable(feature)):
            add(phrase)
    if len(chosen) < 2:
        for feature in features_:
            if feature.startswith("c:") and len(feature) == 5:
                add(feature[2:])
    return chosen


def concept_words(prepared: Prepared, tag: str) -> list[str]:
    """The words of the text, outside any scope, that carry a lexicon tag."""
    return list(dict.fromkeys(word for clause in prepared.clauses
                              for t, word, mark in clause.concepts if t == tag and not mark))


def _merge(*groups: list[str]) -> list[str]:
    out: list[str] = []
    for group in groups:
        for phrase in group:
            if phrase and not any(phrase in c for c in out):
                out.append(phrase)
    return out


def judge(text: str, *, channel: str | None = None) -> Judgement:
    """Judge one text (a whole SMS thread is one text). `channel` may tune thresholds."""
    return judge_with(model(), text, channel=channel)


def judge_with(trained: Model | None, text: str, *, channel: str | None = None) -> Judgement:
    """`judge` with a given model (the bench's per-fold models, tests); None: rules alone."""
    prepared = prepare(text or "")
    settings = _settings(channel)
    danger = rules.danger(prepared)
    words = rules.category_words(prepared)
    found = rules.situations(prepared)
    if trained is None:
        return _by_rules(prepared, danger, words, found)
    columns, values = trained.vector(features(prepared, bool(danger.fired)))
    if not len(columns) and not danger.fired:  # nothing the model knows: no grounds to judge
        return _finish(prepared, ["other"], {"other": 0.0}, False, sorted(found),
                       "noise" if _looks_empty(prepared) else None, {}, trained, 0.0, 1.0)
    scores = trained.scores(columns, values)

    def why(head: str, label: str) -> list[str]:
        return _phrases(trained.evidence(head, label, columns, values, top=12), prepared)

    categories, confidence = _categories(scores, settings)
    evidence: dict[str, list[str]] = {}
    for code in categories:
        if code in scores.get("category", {}) or code in scores.get("primary", {}):
            head = "category" if code in scores.get("category", {}) else "primary"
            evidence[f"category:{code}"] = _merge(words.get(code, []), why(head, code))[:6]

    p_danger = scores.get("emergency", {}).get("emergency", 0.0)
    threshold = settings.emergency_threshold
    if threshold is None:  # the trained one: the register's own, else the one for all
        threshold = trained.thresholds.get(
            f"emergency:{register_of(channel)}",
            trained.thresholds.get("emergency", settings.emergency_threshold_max))
    # The model alone raises danger only with phrases to show for it (not on a text of
    # greetings or markup whose few features happen to lean that way).
    # Nor when the text says the child is safe now and no danger phrase fired.
    safe = rules.safety(prepared)
    # Nor when the not-a-case head is sure the text is no case at all (an adult's quarrel, a
    # false alarm, a street lamp): in CV the true emergencies' p(case) is >= 0.67.
    # A text that names a minor (未成年, an age under 18) is about a child whatever the head
    # thinks of it: "宾馆前台发现一名未成年女孩与多名成年男子同住" is a mandatory report.
    minor = _names_minor(prepared)
    p_case = scores.get("not_a_case", {}).get("case", 1.0)
    sure_not = not minor and p_case < settings.emergency_case_floor
    # Nor on a text about adults alone ("两名成年男子因停车打起来", "其父亲（70岁）走失"). A
    # danger phrase still fires there: the rules are the recall net and nothing overrides them.
    adults = adults_only(prepared)
    model_says = (why("emergency", "emergency")
                  if p_danger >= threshold and not safe and not sure_not and not adults else [])
    emergency = bool(danger.fired) or bool(model_says)
    if emergency:
        evidence["emergency"] = _merge(danger.fired, model_says)[:6]

    not_a_case = None
    if not emergency:
        not_a_case = _reason(prepared, scores, settings.not_a_case_threshold)
        # It says something, unless it says that what it says was a false alarm.
        if not_a_case == "noise" and (words or _harm(prepared)) and not rules.false_alarm(
                prepared):
            not_a_case = None
        if not_a_case == "not_minor" and minor:
            not_a_case = None
        note = false_alarm_note(prepared)
        if adults:  # no child in it at all: not a minor's case, whatever the head thinks
            not_a_case = "not_minor"
            evidence["not_a_case"] = adults
        elif not words and not _harm(prepared) and names_no_child(prepared):
            not_a_case = "noise"  # a street lamp, a parking space, rubbish not collected
        elif note:  # "经核实系谣言", "无警情": the call was a false alarm
            not_a_case = "noise"
            evidence["not_a_case"] = note
        elif not_a_case and "not_a_case" in scores:
            evidence["not_a_case"] = why("not_a_case", not_a_case)

    situations = dict(found)
    for label, p in scores.get("situation", {}).items():
        if p >= settings.situation_threshold:
            situations.setdefault(int(label), [])
    for number in situations:
        model_words = why("situation", str(number)) if str(number) in scores.get(
            "situation", {}) else []
        evidence[f"situation:{number}"] = _merge(situations[number], model_words)[:6] or (
            evidence.get("emergency", [])[:3])

    return _finish(prepared, categories, confidence, emergency, sorted(situations), not_a_case,
                   evidence, trained, p_danger, threshold)


def _categories(scores: dict[str, dict[str, float]], settings: schema.Engine) -> tuple[
        list[str], dict[str, float]]:
    primary = scores.get("primary", {})
    each = scores.get("category", {})
    if not primary and not each:
        return ["other"], {"other": 0.0}
    blend = settings.primary_blend
    ranked = {c: primary.get(c, 0.0) + blend * each.get(c, 0.0) for c in {*primary, *each}}
    first = max(sorted(ranked), key=ranked.__getitem__)
    confidence = {first: round(max(primary.get(first, 0.0), each.get(first, 0.0)), 4)}
    floor = settings.category_threshold
    for code, p in sorted(each.items(), key=lambda kv: -kv[1]):
        if code != first and p >= floor:
            confidence[code] = round(p, 4)
    return list(confidence), confidence


def _looks_empty(prepared: Prepared) -> bool:
    """Nothing a person wrote in Chinese, and short: a keypad's digits, blank lines."""
    return not _MEANINGFUL.search(prepared.text) and len(prepared.text.strip()) < 20


# Lexicon concepts that are not about harm to a child: they do not make a text say something.
_NOT_HARM = {"minor", "adult", "consult", "noise", "fiction", "now", "done"}


def _harm(prepared: Prepared) -> list[str]:
    """The lexicon's words of harm the text says outside any scope (a noise text has none)."""
    return [word for clause in prepared.clauses for tag, word, mark in clause.concepts
            if tag not in _NOT_HARM and not mark]


# 未成年 said of someone, not denied ("家中无未成年人", "并非未成年", "没有未成年子女").
_A_MINOR = re.compile(r"(?<![无非])(?<!没有)(?<!不是)(?<!并无)未成年")


def _names_minor(prepared: Prepared) -> bool:
    """The text says outright, outside any scope, that the person is a minor: 未成年, or an
    age under 18 (a 20-year-old 学生 is not)."""
    return any(a < 18 for a in prepared.ages) or any(
        tag == "minor" and word.startswith("未成年") and not mark and _A_MINOR.search(clause.text)
        for clause in prepared.clauses for tag, word, mark in clause.concepts)


# A stated age ("35岁", "今年二十了", "七十多了"); the text has turned numbers before 岁 into
# digits, not those before 了.
_AN_AGE = re.compile(
    r"(\d{1,2}|[一二三四五六七八九]?十[一二三四五六七八九]?)(?:多|来|余)?(?:周?岁|了)")


def adults_only(prepared: Prepared) -> list[str]:
    """The signs that a text is about adults alone (triage.toml [engine.adults]), or [] when
    it is not: it says someone is an adult (an age of 18 or more, 成年人, 夫妻, 老人 ...) and
    names no child: no age under 18, no word of a child except under a negation ("家中没有孩子")
    or in a clause that says that child is grown up ("孩子已成年在外地工作", "她儿子已经30岁了")."""
    words = triage().engine.adults
    if not words.adult or any(a < 18 for a in prepared.ages):
        return []
    signs: list[str] = []
    for clause in prepared.clauses:
        text = clause.text
        for word in words.not_child:
            text = text.replace(word, "\0" * len(word))
        ages = [(m.start(), age) for m in _AN_AGE.finditer(clause.text)
                if (age := _age(m.group(1))) is not None]
        if any(age < 18 for _, age in ages):
            return []
        signs += [f"{age}岁" for _, age in ages] + [
            w for w in words.adult if (at := clause.text.find(w)) >= 0
            and not ((span := clause.scope.at(at, len(w))) and span.clear)]
        grown = any(w in clause.text for w in words.grown)
        for word in words.child:
            at = text.find(word)
            while at >= 0:
                span = clause.scope.at(at, len(word))
                if not (span and span.clear and span.kind == "negation" or grown
                        or any(where > at for where, _ in ages)):
                    return []
                at = text.find(word, at + 1)
    return list(dict.fromkeys(signs))


def _age(number: str) -> int | None:
    return int(number) if number.isdigit() else cn_number(number)


# A bare number that could be an age ("她16,我17"): such a text is not said to name no child.
_BARE_AGE = re.compile(r"(?<!\d)(?:[1-9]|1[0-7])(?!\d)")


def names_no_child(prepared: Prepared) -> bool:
    """The text names no child and tells of no one hurt (triage.toml [engine.adults]): no age
    under 18, no bare number that could be one, no word of a child (negated or not), of a
    child's family or school (a child writing "我爸喝醉了" names no child word but is one) or
    of hurt ("小明被他爸打了" names a child only by name)."""
    words = triage().engine.adults
    return not any(a < 18 for a in prepared.ages) and not _BARE_AGE.search(prepared.text) and (
        not any(w in prepared.text for w in words.child + words.family + words.hurt))


def false_alarm_note(prepared: Prepared) -> list[str]:
    """A note saying the call was a false alarm (triage.toml [engine] false_alarm_note), each
    phrase not negated ("并非误报" does not say it; the reported claim before it does not
    govern it: "网上有人说……，经核实系谣言")."""
    found = []
    for clause in prepared.clauses:
        for phrase in triage().engine.false_alarm_note:
            at = clause.text.find(phrase)
            span = clause.scope.at(at, len(phrase)) if at >= 0 else None
            if at >= 0 and not (span and span.clear and span.kind == "negation"):
                found.append(phrase)
    return list(dict.fromkeys(found))


def _reason(prepared: Prepared, scores: dict[str, dict[str, float]], floor: float) -> str | None:
    if _looks_empty(prepared):
        return "noise"
    reasons = scores.get("not_a_case", {})
    if not reasons:
        return None
    # The reasons together against "case": a text that is clearly no case but could be a
    # question or noise must not fall through because neither reason alone reaches the floor.
    others = {r: p for r, p in reasons.items() if r != "case"}
    if not others or sum(others.values()) < floor:
        return None
    return max(sorted(others), key=others.__getitem__)


def _risk(categories: list[str], emergency: bool, situations: list[int], not_a_case: str | None,
          near_danger: bool) -> str:
    if emergency:
        return "red"
    if not_a_case:
        return "blue"
    if situations or near_danger or categories[0] in _SERIOUS:
        return "orange"
    return "yellow"


def _finish(prepared: Prepared, categories: list[str], confidence: dict[str, float],
            emergency: bool, situations: list[int], not_a_case: str | None,
            evidence: dict[str, list[str]], trained: Model | None, p_danger: float,
            threshold: float) -> Judgement:
    place = place_in_text(prepared.text)
    if place:
        evidence["jurisdiction"] = [place[1]]
    return Judgement(
        categories=categories,
        scores=confidence,
        emergency=emergency,
        situations=situations,
        jurisdiction=place[0] if place else None,
        not_a_case=not_a_case,
        risk=_risk(categories, emergency, situations, not_a_case, p_danger >= threshold / 2),
        evidence={k: v for k, v in evidence.items() if v or k.startswith("situation:")},
        version=trained.version if trained else RULES_VERSION,
    )


def _by_rules(prepared: Prepared, danger: rules.Found, words: dict[str, list[str]],
              found: dict[int, list[str]]) -> Judgement:
    """No trained model (a deployment that removed it): keywords with scope, and facts."""
    ranked = sorted(words, key=lambda code: -len(words[code])) or ["other"]
    evidence = {f"category:{code}": words[code] for code in ranked if code in words}
    if danger.fired:
        evidence["emergency"] = danger.fired
    evidence.update({f"situation:{n}": w for n, w in found.items()})
    confidence = {code: round(float(np.clip(len(words.get(code, [])) / 3, 0, 1)), 4)
                  for code in ranked}
    return _finish(prepared, ranked, confidence, bool(danger.fired), sorted(found), None,
                   evidence, None, 0.0, 1.0)
