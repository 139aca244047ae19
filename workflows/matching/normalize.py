"""How names, addresses, ages and texts are written down before they are compared.

Reports about one child come from a teacher's web form, a 12345 operator's typing and a
neighbour's SMS: the same boy is 王小明 and 王晓明, the same building 3栋, 三号楼 and 3幢,
the same village group 李家村三组 and 李家村3队. Comparing what is said, not how it is written,
is what finds him again.
"""

import re
import unicodedata
from functools import lru_cache

from pypinyin import Style, lazy_pinyin
from pypinyin.constants import PHRASES_DICT, RE_HANS

# Words that say a name is not known (anonymous SMS, a passer-by's call).
_NO_NAME = re.compile(
    r"^(不详|未知|无名|匿名|不知道|不清楚|不认识|无|没有|小孩|孩子|男孩|女孩|小男孩|小女孩|"
    r"儿童|学生|婴儿|某+|.某+|unknown|none|n/?a)$"
)
_NAME_NOISE = re.compile(r"[\s·•.\-_,，、()（）\[\]【】\"'“”]")

# Accents many callers have (and operators type): l/n, z/zh, c/ch, s/sh. Not the finals
# (han/hang, min/ming): folded, they make different children's names sound alike.
_FOLDS = (("zh", "z"), ("ch", "c"), ("sh", "s"))


@lru_cache(maxsize=262_144)
def clean_name(name: str | None) -> str:
    """The name as characters only; "" when it says nobody knows it."""
    if not name:
        return ""
    text = _NAME_NOISE.sub("", unicodedata.normalize("NFKC", name)).lower()
    return "" if _NO_NAME.match(text) else text


_CHARS: dict[str, str | None] = {}  # a character's pinyin alone (None: not one syllable)


def _char(ch: str) -> str | None:
    found = _CHARS.get(ch, "")
    if found == "":
        alone = lazy_pinyin(ch, style=Style.NORMAL, errors="default")
        found = _CHARS[ch] = alone[0] if len(alone) == 1 and alone[0] else None
    return found


def _no_phrase(name: str) -> bool:
    """No two or more characters of the name together are a word of pypinyin's phrase
    dictionary (its only reason to read a character otherwise than alone)."""
    return not any(name[i:j] in PHRASES_DICT
                   for i in range(len(name)) for j in range(i + 2, len(name) + 1))


@lru_cache(maxsize=262_144)
def syllables(name: str) -> tuple[str, ...]:
    """Pinyin of each character without tones (王晓明 → wang xiao ming).

    What lazy_pinyin gives, made from each character's pinyin when the name is all Chinese
    characters and holds no phrase (lazy_pinyin reads such a name a character at a time):
    a name's pinyin cost ~0.1–0.3 ms in lazy_pinyin, the largest part of a ledger import."""
    if RE_HANS.match(name) and _no_phrase(name):
        out = tuple(_char(ch) for ch in name)
        if None not in out:
            return out  # type: ignore[return-value]
    return tuple(lazy_pinyin(name, style=Style.NORMAL, errors="default"))


def fold(syllable: str) -> str:
    """A syllable as it sounds to a caller who does not tell l/n or zh/z apart."""
    if syllable.startswith("n"):
        syllable = "l" + syllable[1:]
    for long, short in _FOLDS:
        syllable = syllable.replace(long, short)
    return syllable


@lru_cache(maxsize=262_144)
def sound(name: str) -> tuple[str, ...]:
    return tuple(fold(s) for s in syllables(name))


@lru_cache(maxsize=262_144)
def initials(name: str) -> str:
    return "".join(fold(s)[0] for s in syllables(name) if s)


def pinyin(name: str | None) -> str:
    """The child record's pinyin column: 王小明 → "wang xiao ming"."""
    cleaned = clean_name(name)
    return " ".join(syllables(cleaned)) if cleaned else ""


# ---- addresses -------------------------------------------------------------------------

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
           "七": 7, "八": 8, "九": 9}
_UNITS = "栋幢座号楼单元层室组队期排户"
_CN_NUMBER = re.compile(rf"([零〇一二两三四五六七八九十百]+)(?=[{_UNITS}])")
_ADDRESS_NOISE = re.compile(r"[\s,，.。;；:：、#＃()（）【】\[\]/\\'\"“”\-_~]")
# Words that say where, not what: dropped so "幸福里小区3栋附近" is "幸福里3栋".
_VAGUE = re.compile(r"小区|附近|旁边|周边|周围|门口|对面|一带|那边|这边|那里|这里|边上|里面")
# The prefix of a district, county or street a form adds and a caller leaves out.
_ADMIN = re.compile(r"^.{1,8}?(?:省|市|(?<![社小园])区|县|街道|镇|乡)(?=.{2,})")
_PLACE = re.compile(r"[^\d]{2,}")
_NUMBERED = re.compile(rf"\d+(?:[{_UNITS}]|单元)")


def chinese_number(text: str) -> int:
    """三 → 3, 十二 → 12, 二十三 → 23, 一百零五 → 105 (digit by digit when no 十/百)."""
    if "十" not in text and "百" not in text:
        return int("".join(str(_DIGITS.get(ch, 0)) for ch in text))
    total, current = 0, 0
    for ch in text:
        if ch == "百":
            total += (current or 1) * 100
            current = 0
        elif ch == "十":
            total += (current or 1) * 10
            current = 0
        else:
            current = _DIGITS.get(ch, 0)
    return total + current


@lru_cache(maxsize=262_144)
def normalize_address(address: str | None) -> str:
    """One spelling of an address: half-width, lower case, Arabic numerals, 栋 for 号楼/幢/座,
    组 for 队/小组, and 小区/附近/门口 and punctuation dropped."""
    if not address:
        return ""
    text = unicodedata.normalize("NFKC", address).lower()
    text = _ADDRESS_NOISE.sub("", text)
    text = _CN_NUMBER.sub(lambda m: str(chinese_number(m.group(1))), text)
    text = re.sub(r"(\d+)(?:号楼|幢|座|号栋)", r"\1栋", text)
    text = re.sub(r"(\d+)(?:小组|队|生产队|村民小组)", r"\1组", text)
    text = text.replace("生产队", "组")
    text = _VAGUE.sub("", text)
    return text


def strip_admin(address: str) -> str:
    """Without the city, district or street in front (both spellings meet on what follows)."""
    for _ in range(4):
        shorter = _ADMIN.sub("", address, count=1)
        if shorter == address:
            break
        address = shorter
    return address


@lru_cache(maxsize=262_144)
def place_tokens(address: str | None) -> tuple[str, ...]:
    """The named places of an address and each with its numbers (幸福里, 幸福里3栋):
    blocking keys and the "same place" signal."""
    text = strip_admin(normalize_address(address))
    if not text:
        return ()
    tokens: list[str] = []
    for match in _PLACE.finditer(text):
        name = match.group(0)
        if len(name) < 2 or all(ch in _UNITS for ch in name) or name == "单元":
            continue
        tokens.append(name)
        numbered = _NUMBERED.match(text, match.end())
        if numbered:
            tokens.append(name + numbered.group(0))
    return tuple(dict.fromkeys(tokens))


# ---- ages and texts ----------------------------------------------------------------------

_AGE_EXACT = re.compile(r"(\d{1,2})\s*(?:周)?岁")
_AGE_WORDS = re.compile(r"([一二两三四五六七八九十]{1,3})(来|多|几)?岁")
_AGE_PAIR = re.compile(r"([一二两三四五六七八九])([一二三四五六七八九])岁")


def age_range(age: int | None, text: str | None = None) -> tuple[int, int] | None:
    """The age given, or the span a text says ("十来岁" 9–12, "七八岁" 7–8, "十几岁" 11–17)."""
    if age is not None:
        return (age, age)
    if not text:
        return None
    if m := _AGE_EXACT.search(text):
        value = int(m.group(1))
        return (value, value) if value < 18 else None
    if m := _AGE_PAIR.search(text):
        return (_DIGITS[m.group(1)], _DIGITS[m.group(2)])
    if m := _AGE_WORDS.search(text):
        value = chinese_number(m.group(1))
        if m.group(2) == "来":
            return (value - 1, value + 2)
        if m.group(2) in ("多", "几"):
            return (value + 1, value + 7 if value == 10 else value + 9)
        return (value, value) if value < 18 else None
    return None


_TEXT_NOISE = re.compile(r"[\s\d，。！？、；：,.!?;:“”\"'（）()《》…—\-]")
# Characters every report has; they make two unrelated stories look alike.
_COMMON = set("的了是在我有他她孩子小个一不这那说们就也都和很到被")


@lru_cache(maxsize=4096)
def bigrams(text: str | None) -> frozenset[str]:
    """Character pairs of a text, for "what happened" similarity without a segmenter."""
    if not text:
        return frozenset()
    chars = [ch for ch in _TEXT_NOISE.sub("", text) if ch not in _COMMON]
    return frozenset(a + b for a, b in zip(chars, chars[1:], strict=False))


_PLACE_WORD = (r"(?:小区|社区|花园|公寓|新村|村|小学|中学|学校|幼儿园|公园|广场|市场|车站|医院|"
               r"大道|路|街|巷)")
_PLACE_IN_TEXT = re.compile(
    rf"[\u4e00-\u9fa5]{{2,8}}?{_PLACE_WORD}(?:[\u4e00-\u9fa5]{{0,4}}?{_PLACE_WORD})?"
    r"(?:[\d零一二两三四五六七八九十]+[栋幢座号组队])?"
)


def place_in_text(text: str | None) -> str | None:
    """The first place a free text names ("幸福里小区3栋楼下…" → 幸福里小区3栋), for a report
    with no address field (an SMS, a call), so it can still match on place."""
    if not text:
        return None
    match = _PLACE_IN_TEXT.search(text)
    if not match:
        return None
    # The words before the place ("今天在…", "我家邻居住…") are not part of it.
    place = re.split(r"[在到于从住去是]", match.group(0))[-1]
    return place if len(place) >= 3 else None
