"""Text preparation for the triage engine: one normal form, clauses, scope, tokens and ages.

Every text is read the same way in training and at run time:
- the first MAX_TEXT characters, Traditional → Simplified (OpenCC t2s, as `classify` does),
  full-width → half-width (NFKC), Latin lower-cased, Chinese numerals before 岁/个月/年级 as
  digits ("十二岁" → "12岁"), so an age reads the same however it was typed;
- clauses: split on punctuation, spaces and line breaks and before 但是/可是/不过/然而, so a
  cue's scope ends where the reporter's thought does;
- scope per clause (workflows/triage/scope.py) and jieba tokens with the domain lexicon.

jieba's dictionary takes ~0.6 s to load, so it is loaded once, lazily, into a private
tokenizer whose cache lives in a writable folder (the temp dir, or `HOTLINE_CACHE_DIR`);
`warm()` does it up front, at app start, so no report waits for it.
"""

import logging
import os
import re
import tempfile
import threading
import unicodedata
from dataclasses import dataclass
from functools import cache

import jieba

from workflows.config import path, triage
from workflows.triage.keywords import MAX_TEXT, _t2s
from workflows.triage.scope import Scope, clause_scopes

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
           "八": 8, "九": 9}
_CN_NUMBER = re.compile(
    r"([零〇一二两三四五六七八九十]{1,4})(?=(?:多|来)?(?:周)?岁|个多?月|年级|个孩子)")
_SENTENCES = re.compile(r"[。！？!?；;\n]+")
_SPLIT = re.compile(
    r"[,.!?;:，。！？；：、…~～\s\"'“”‘’()（）\[\]【】<>《》|/]+|(?=但是|可是|不过|然而)")
_AGE = re.compile(r"(\d{1,2})(?:多|来)?(?:周)?岁")
# An infant's age in months ("8个月大的女婴", "孩子才3个月"), not a duration ("拖欠工资3个月",
# "怀孕7个月", "已经1个多月没去学校"), which had made every such text name a baby.
_MONTHS = re.compile(r"(?:才|刚满|出生|不到|只有)\d{1,2}个多?月"
                     r"|\d{1,2}个多?月(?=大|的?(?:婴|宝宝|孩|娃|小孩|女儿|儿子|男孩|女孩))")
# School years and words that tell an age without a number (youngest bound of the range).
_AGE_WORDS = {"婴儿": 0, "新生儿": 0, "幼儿园": 4, "小学": 8, "一年级": 6, "二年级": 7,
              "三年级": 8, "四年级": 9, "五年级": 10, "六年级": 11, "初一": 12, "初二": 13,
              "初三": 14, "初中": 13, "高一": 15, "高二": 16, "高三": 17, "高中": 16}

log = logging.getLogger(__name__)


def cn_number(word: str) -> int | None:
    """十二 → 12, 二十三 → 23, 十五六 → 15 (the lower end of a range), 七八 → 7."""
    if not word or any(ch not in _DIGITS and ch != "十" for ch in word):
        return None
    if "十" not in word:
        return _DIGITS[word[0]]
    tens, _, rest = word.partition("十")
    value = (_DIGITS.get(tens[-1], 1) if tens else 1) * 10
    return value + (_DIGITS[rest[0]] if rest and rest[0] in _DIGITS else 0)


def normalise(text: str | None) -> str:
    """The one normal form every part of the engine reads."""
    if not text or not text.strip():
        return ""
    simplified = _t2s().t2s(text[:MAX_TEXT])
    folded = unicodedata.normalize("NFKC", simplified).lower()
    return _CN_NUMBER.sub(lambda m: str(cn_number(m.group(1)) or m.group(1)), folded)


def split_clauses(text: str) -> list[list[str]]:
    """Sentences, each a list of clauses."""
    sentences = (sentence for sentence in _SENTENCES.split(text) if sentence.strip())
    return [parts for sentence in sentences if (parts := [p for p in _SPLIT.split(sentence) if p])]


def ages(text: str) -> list[int]:
    """Ages the (normalised) text states, in years, in order of appearance."""
    found = [int(m.group(1)) for m in _AGE.finditer(text)]
    found += [0 for _ in _MONTHS.finditer(text)]
    found += [age for word, age in _AGE_WORDS.items() if word in text]
    return found


@dataclass(frozen=True)
class Clause:
    text: str
    scope: Scope  # which cues govern which characters
    tokens: list[tuple[str, str]]  # (jieba token, scope mark: "" or one of scope.MARKS)
    concepts: list[tuple[str, str, str]]  # (lexicon tag, word, scope mark), overlaps included


@dataclass(frozen=True)
class Prepared:
    text: str  # the normalised text
    clauses: list[Clause]
    ages: list[int]


_lock = threading.Lock()


def _cache_dir() -> str:
    folder = os.environ.get("HOTLINE_CACHE_DIR") or tempfile.gettempdir()
    os.makedirs(folder, exist_ok=True)
    return folder


@cache
def _tokenizer() -> jieba.Tokenizer:
    """jieba with its dictionary and the domain lexicon, built once per process."""
    with _lock:
        jieba.setLogLevel(logging.WARNING)
        tokenizer = jieba.Tokenizer()
        tokenizer.tmp_dir = _cache_dir()
        tokenizer.initialize()
        for word in lexicon():
            tokenizer.add_word(word)
        return tokenizer


@cache
def tagged() -> dict[str, str]:
    """word → tag of the lexicon file (jieba userdict format, `word [freq] [tag]` a line)."""
    tags: dict[str, str] = {}
    lexicon_file = path("triage_lexicon.txt")
    if lexicon_file.exists():
        for line in lexicon_file.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if parts and not parts[0].startswith("#"):
                tag = parts[-1] if len(parts) > 1 and parts[-1].isalpha() else ""
                tags[normalise(parts[0])] = tag
    return tags


@cache
def _concept_pattern() -> re.Pattern[str] | None:
    words = sorted((w for w, tag in tagged().items() if tag), key=lambda w: (-len(w), w))
    if not words:
        return None
    return re.compile("(?=(" + "|".join(re.escape(w) for w in words) + "))")


def _concepts(clause: str, scope: Scope) -> list[tuple[str, str, str]]:
    pattern = _concept_pattern()
    if pattern is None:
        return []
    tags = tagged()
    return [(tags[m.group(1)], m.group(1), scope.mark(m.start(), len(m.group(1))))
            for m in pattern.finditer(clause)]


@cache
def lexicon() -> list[str]:
    """The domain words jieba must keep whole: the lexicon file and every keyword of
    triage.toml."""
    words: list[str] = list(tagged())
    config = triage()
    for group in config.categories.values():
        words += group
    words += config.danger.keywords
    return list(dict.fromkeys(w for w in words if len(w) >= 2))


def warm() -> None:
    """Load jieba, the converter, the lexicon and the trained model now rather than on the
    first report (~1 s)."""
    from workflows.triage.model import model

    prepare("预热")
    model()


def prepare(text: str | None) -> Prepared:
    normal = normalise(text)
    tokenizer = _tokenizer()
    clauses = []
    for sentence in split_clauses(normal):
        reported: str | None = None
        for part in sentence:
            scope = clause_scopes(part, reported)
            reported = scope.reported_cue()
            tokens, at = [], 0
            for token in tokenizer.lcut(part, HMM=True):
                tokens.append((token, scope.mark(at, len(token))))
                at += len(token)
            clauses.append(Clause(part, scope, tokens, _concepts(part, scope)))
    return Prepared(normal, clauses, ages(normal))
