"""The rules beside the model: danger phrases read with scope (the recall net), category
keywords as evidence, and mandatory-report situations that follow from facts the text states
(a pregnancy and an age under 14 is situation 2 whatever the model thinks)."""

import re
from dataclasses import dataclass
from functools import cache

from workflows.config import triage
from workflows.triage.text import Prepared


@dataclass(frozen=True)
class Found:
    fired: list[str]  # phrases that count
    ignored: list[str]  # phrases found under a clear scope (negated, hypothetical, reported)


@cache
def _danger() -> tuple[tuple[str, ...], tuple[str, ...]]:
    config = triage()
    phrases = config.danger.keywords + config.engine.danger.phrases
    return tuple(phrases), tuple(config.danger.harmless)


@cache
def _pattern(words: tuple[str, ...]) -> re.Pattern[str] | None:
    """One alternation, longest first: leftmost match, a phrase inside a longer one found at
    the same place does not count again."""
    if not words:
        return None
    ordered = sorted(set(words), key=lambda w: (-len(w), w))
    return re.compile("|".join(re.escape(w) for w in ordered))


def _blank(text: str, words: tuple[str, ...]) -> str:
    pattern = _pattern(words)
    return pattern.sub(lambda m: "\0" * len(m.group(0)), text) if pattern else text


def _scan(prepared: Prepared, phrases: list[str] | tuple[str, ...],
          harmless: list[str] | tuple[str, ...] = ()) -> Found:
    fired: list[str] = []
    ignored: list[str] = []
    pattern = _pattern(tuple(phrases))
    if pattern is None:
        return Found([], [])
    for clause in prepared.clauses:
        text = _blank(clause.text, tuple(harmless))
        for match in pattern.finditer(text):
            span = clause.scope.at(match.start(), len(match.group(0)))
            (ignored if span and span.clear else fired).append(match.group(0))
    return Found(list(dict.fromkeys(fired)), list(dict.fromkeys(ignored)))


def danger(prepared: Prepared) -> Found:
    """Danger phrases that fire: any not under a clear negation, hypothetical, reported or
    past scope, and a child living with the person who keeps hurting them. When unsure, a
    phrase counts."""
    phrases, harmless = _danger()
    found = _quoted_false_alarm(prepared, _scan(prepared, phrases, harmless))
    found = _told_safe_since(prepared, _urgency_marker(prepared, found))
    abuse = (ongoing_abuse(prepared) + accompanied_by_the_man(prepared)
             + out_at_night(prepared))
    return Found(list(dict.fromkeys(found.fired + abuse)), found.ignored) if abuse else found


# A register's urgency field written into the text (【紧急】, 紧急程度：紧急): the partner's
# word, which the channel reads as such; it says nothing of what happens to the child.
_MARKER = re.compile(
    r"[【\[]\s*(?:紧急|特急|加急)\s*[】\]]|紧急程度\s*[:：]?\s*(?:特急|紧急|加急)?")


def _urgency_marker(prepared: Prepared, found: Found) -> Found:
    """A danger phrase found only inside an urgency marker does not fire ("需紧急手术" does)."""
    if not found.fired or not _MARKER.search(prepared.text):
        return found
    rest = _MARKER.sub("\0", prepared.text)
    fired = [p for p in found.fired if p in rest]
    marked = [p for p in found.fired if p not in rest]
    return Found(fired, list(dict.fromkeys(found.ignored + marked)))


_LATE = re.compile(r"(?<!\d)(?:2[2-3]|[0-4])时|晚上(?:1[0-2]|十[一二]?)点")
_SENTENCE = re.compile(r"[。！？!?\n]")


def out_at_night(prepared: Prepared) -> list[str]:
    """"凌晨3时，巡逻民警在和平路发现三名十二三岁的男孩在路边游荡": a child outdoors in the dead
    of night now (triage.toml [engine.night]), in a text that names a minor; not a habit
    ("每天唱到半夜") nor a past night ("昨天晚上十一点")."""
    words = triage().engine.night
    if not words.outdoors or not (any(a < 18 for a in prepared.ages) or any(
            tag == "minor" for clause in prepared.clauses for tag, _, _ in clause.concepts)):
        return []
    for sentence in _SENTENCE.split(prepared.text):
        late = _LATE.search(sentence) or next(
            (w for w in words.night if w in sentence), None)
        where = next((w for w in words.outdoors if w in sentence), None)
        if late and where and not any(w in sentence for w in words.habit):
            return [late if isinstance(late, str) else late.group(0), where]
    return []


def _told_safe_since(prepared: Prepared, found: Found) -> Found:
    """"昨日割腕，伤口已缝合", "服用安眠药，经洗胃后生命体征平稳": in a text that says the child
    is safe or cared for now (triage.toml [engine] safe), a danger phrase tells what happened
    before; it still fires in a clause with a sign of the present ([scope] present). A false
    alarm (系误报, 无警情) speaks of the claim, not of the child: `_quoted_false_alarm`'s."""
    alarms = triage().engine.false_alarm
    if not found.fired or not [s for s in safety(prepared) if not any(a in s for a in alarms)]:
        return found
    present = triage().scope.present
    now = [clause for clause in prepared.clauses if any(w in clause.text for w in present)]
    fired = [p for p in found.fired if any(p in clause.text for clause in now)]
    told = [p for p in found.fired if p not in fired]
    return Found(fired, list(dict.fromkeys(found.ignored + told)))


_WITH_HER = re.compile(r"陪同男子|男子陪同|男人陪同|陪同的(是)?(一[个名])?[^，。；]{0,6}(男|叔叔)")


def accompanied_by_the_man(prepared: Prepared) -> list[str]:
    """The corpus README's rule for 12345-0081 and mandatory-0003: a girl under 14 pregnant or
    sexually abused (situation 2's facts) brought in by a man who takes her home again."""
    if 2 not in situations(prepared):
        return []
    match = _WITH_HER.search(prepared.text)
    return [match.group(0)] if match else []


_QUOTED = re.compile(r"[“\"「『]([^”\"」』]{1,40})[”\"」』]")


def false_alarm(prepared: Prepared) -> list[str]:
    """The words saying the reported danger was a false alarm (triage.toml [engine])."""
    return [m for m in triage().engine.false_alarm if m in prepared.text]


def _quoted_false_alarm(prepared: Prepared, found: Found) -> Found:
    """"报警人所称“有人要跳楼”系……，系误报": a danger phrase only inside the quoted claim of a
    text that says the claim was a false alarm (triage.toml [engine] false_alarm) does not
    fire; the same phrase anywhere outside the quotes still does."""
    text = prepared.text
    if not found.fired or not false_alarm(prepared):
        return found
    outside = _QUOTED.sub(lambda m: "\0" * len(m.group(0)), text)
    fired = [p for p in found.fired if p in outside]
    quoted = [p for p in found.fired if p not in outside]
    return Found(fired, list(dict.fromkeys(found.ignored + quoted)))


@cache
def _abuse() -> dict[str, tuple[str, ...]]:
    config = triage().engine.abuse
    return {"household": tuple(config.household), "acts": tuple(config.acts),
            "repeated": tuple(config.repeated), "injuries": tuple(config.injuries),
            "apart": tuple(config.apart), "sexual": tuple(config.sexual)}


def ongoing_abuse(prepared: Prepared) -> list[str]:
    """"继父又打她", "他叔经常拿烟头烫他": a household member before an act of abuse in one
    clause (the act outside a clear scope), in a text that says it keeps happening or shows
    the injuries and nothing of the child being apart from them now; a sexual act ("继父每天
    晚上都进她房间", "她爸对她做那种事") needs neither. The corpus README's rule: the child is
    tonight in the home of the suspect of ongoing physical or sexual abuse."""
    words = _abuse()
    text = prepared.text
    if any(w in text for w in words["apart"]):
        return []
    shown = any(w in text for w in words["repeated"] + words["injuries"])
    who = _pattern(words["household"])
    acts = _pattern(words["sexual"] + (words["acts"] if shown else ()))
    if who is None or acts is None:
        return []
    out = []
    for clause in prepared.clauses:
        first = who.search(clause.text)
        if first is None:
            continue
        for act in acts.finditer(clause.text, first.end()):
            span = clause.scope.at(act.start(), len(act.group(0)))
            if span and span.clear:
                continue
            if act.group(0) in words["sexual"] and not _does_it(
                    clause.text[first.end():act.start()]):
                continue
            out.append(clause.text[first.start():act.end()])
            break
    return out


def _does_it(between: str) -> bool:
    """The household member is the one who does the sexual act: close before it, and no
    other agent between ("母亲发现孩子被邻居猥亵" is the mother reporting a neighbour)."""
    return len(between) <= SEXUAL_GAP and "被" not in between


SEXUAL_GAP = 10  # characters: "继父每天晚上都进她房间", "我妈的男朋友现在在房间里脱她衣服"


def safety(prepared: Prepared) -> list[str]:
    """Phrases saying the child is safe now (triage.toml [engine] safe)."""
    pattern = _pattern(tuple(triage().engine.safe))
    if pattern is None:
        return []
    found = []
    for clause in prepared.clauses:
        for match in pattern.finditer(clause.text):
            span = clause.scope.at(match.start(), len(match.group(0)))
            # Safety phrases carry their own negation (没有危险); only a hypothetical or
            # reported scope takes them back.
            if not (span and span.clear and span.kind in ("hypothetical", "reported")):
                found.append(match.group(0))
    return found


@cache
def _category_words() -> dict[str, tuple[str, ...]]:
    return {code: tuple(words) for code, words in triage().categories.items()}


def category_words(prepared: Prepared) -> dict[str, list[str]]:
    """The configured keywords of each category the text says outside a clear scope."""
    found = {code: _scan(prepared, words).fired for code, words in _category_words().items()}
    return {code: words for code, words in found.items() if words}


_FEMALE = re.compile(r"女|她")
_PREGNANT = ("怀孕", "流产", "引产", "堕胎", "打胎", "早孕", "验孕", "妊娠", "生下", "分娩",
             "产检")
_SEXUAL = ("性侵", "强奸", "猥亵", "发生关系", "发生性关系", "侵犯", "摸她", "隐私部位", "私处",
           "下体")
_GENITAL_INJURY = ("下体", "私处", "隐私部位", "会阴", "阴部", "生殖器")
_INJURY = ("出血", "红肿", "撕裂", "受伤", "伤", "疼", "痛", "损伤", "淤青", "血")
_BEGGING_ORGANISED = ("被组织", "有组织", "带着乞讨", "带出来讨", "控制", "看着她", "看着他",
                      "专门带", "逼")


def situations(prepared: Prepared) -> dict[int, list[str]]:
    """Situations the stated facts imply, with the phrases that show them."""
    found: dict[int, list[str]] = {}
    text = prepared.text
    minors = [a for a in prepared.ages if a < 18]
    pregnant = [w for w in _PREGNANT if w in text]
    sexual = _scan(prepared, _SEXUAL).fired
    female = bool(_FEMALE.search(text))
    under14 = any(a < 14 for a in minors)
    if female and under14 and (pregnant or sexual):
        found[2] = pregnant + sexual
    elif female and minors and pregnant and sexual:
        found[3] = pregnant + sexual
    genital = [w for w in _GENITAL_INJURY if w in text]
    if genital and any(w in text for w in _INJURY):
        found[1] = genital
    begging = [w for w in _BEGGING_ORGANISED if w in text]
    if begging and any(w in text for w in ("乞讨", "要钱", "讨钱", "要饭", "跪")):
        found[8] = begging
    return found
