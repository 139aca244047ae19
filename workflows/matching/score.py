"""Is this the same child (or the same incident)? A score from signals, each with a reason.

Pure rules: a `Profile` is what one report or one child record says, `score` compares two.
The weights and thresholds are the deployment's (workflows/config/matching.toml); the figures
behind them come from bench/bench_matching.py on the team's labelled pairs.
"""

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, lru_cache

from workflows import config as _config
from workflows.config.schema import MatchingConfig, MatchThresholds
from workflows.matching.normalize import (
    age_range,
    bigrams,
    clean_name,
    initials,
    normalize_address,
    place_tokens,
    sound,
    strip_admin,
)
from workflows.reference import jurisdictions

# Addresses shorter than this say too little to match on containment ("3栋").
MIN_CONTAINED = 3
_NUMBERED = re.compile(r"\d+\D")
_NICKNAME = ("小", "阿")


@dataclass(frozen=True, slots=True)
class Profile:
    """What one report (or one child record) says about a child, as given."""

    name: str | None = None
    age: int | None = None
    gender: str | None = None
    address: str | None = None
    jurisdiction: str | None = None
    phones: frozenset[str] = frozenset()  # blind indexes of the numbers, never the numbers
    at: datetime | None = None
    categories: frozenset[str] = frozenset()
    text: str | None = None
    id_index: str | None = None  # blind index of the ID number, never the number


@dataclass(frozen=True)
class Match:
    score: float
    signals: tuple[str, ...]
    reasons: tuple[str, ...] = field(default=())


def settings() -> MatchingConfig:
    """The deployment's weights, thresholds and windows (matching.toml), checked."""
    return _config.matching()


def thresholds() -> MatchThresholds:
    """suggest, very_likely and ledger_match: where a score becomes a suggestion, a "very
    likely" and a ledger match (the children's services, the bench)."""
    return settings().thresholds


@cache
def _parents() -> dict[str, str | None]:
    return {code: parent for code, _, _, parent in jurisdictions()}


def is_root(code: str) -> bool:
    """The city itself: "somewhere in the city" says nothing about where."""
    return code in _parents() and not _parents()[code]


@cache
def _lineage(code: str) -> tuple[str, ...]:
    parents, out = _parents(), []
    while code and code not in out:
        out.append(code)
        code = parents.get(code) or ""
    return tuple(out)


def _jurisdiction(a: str | None, b: str | None) -> str | None:
    """"same" when one lies within the other, "differs" when they share no district."""
    if not a or not b or is_root(a) or is_root(b):
        return None
    la, lb = _lineage(a), _lineage(b)
    if a in lb or b in la:
        return "jurisdiction_same"
    # The district: the ancestor just under the city (lineage ends with the root).
    da = la[-2] if len(la) >= 2 else la[-1]
    db = lb[-2] if len(lb) >= 2 else lb[-1]
    return None if da == db else "jurisdiction_differs"


@lru_cache(maxsize=262_144)
def _name(a: str, b: str) -> str | None:
    """The name signal of two cleaned names, remembered: a ledger row's name meets the same
    namesakes' names chunk after chunk."""
    if not a or not b:
        return None
    if a == b:
        return "name_same"
    sa, sb = sound(a), sound(b)
    if sa == sb:
        return "name_sound"
    if len(a) == len(b) >= 3 and sum(x != y for x, y in zip(a, b, strict=True)) == 1:
        # One character of three off (a typo); of two, it is another given name (李娜, 李雪).
        return "name_one_off"
    if len(a) >= 2 and len(b) >= 2 and a[0] == b[0] and initials(a) == initials(b):
        return "name_initials"
    # A given name alone (欣怡) against the full name (周欣怡).
    if len(a) >= 2 and len(b) >= 2 and (sa[-2:] == sb[-2:]) and abs(len(a) - len(b)) == 1:
        return "name_sound"
    # A pet name (小涵, 阿明) against the name it comes from (张子涵).
    for short, full in ((a, b), (b, a)):
        if len(short) == 2 and short[0] in _NICKNAME and len(full) >= 2:
            if sound(short)[-1] == sound(full)[-1]:
                return "name_sound"
    return "name_differs"


def _years_between(a: datetime | None, b: datetime | None) -> float:
    if a is None or b is None:
        return 0.0
    return (b - a).total_seconds() / (365.25 * 86400)


def _age(a: Profile, b: Profile) -> str | None:
    ra, rb = age_range(a.age, a.text if a.age is None else None), age_range(
        b.age, b.text if b.age is None else None
    )
    if ra is None or rb is None:
        return None
    shift = _years_between(a.at, b.at)  # a's age as it would be at b's time
    lo, hi = ra[0] + shift - 1.2, ra[1] + shift + 1.2
    return "age_match" if rb[1] >= lo and rb[0] <= hi else "age_differs"


@lru_cache(maxsize=262_144)
def _plain(address: str | None) -> str:
    """The address as compared (normalized, without the district in front), remembered:
    one ledger row's address is compared with hundreds of candidates'."""
    return strip_admin(normalize_address(address))


@lru_cache(maxsize=262_144)
def _numbered_tokens(address: str | None) -> frozenset[str]:
    return frozenset(t for t in place_tokens(address) if _NUMBERED.search(t))


def _address(a: str | None, b: str | None) -> str | None:
    na, nb = _plain(a), _plain(b)
    if not na or not nb:
        return None
    if na == nb:
        return "address_same"
    short, long = sorted((na, nb), key=len)
    if len(short) >= MIN_CONTAINED and short in long:
        # "幸福里3栋" within "幸福里3栋2单元" is near; "和平社区" within "和平社区12栋" is
        # only the same estate.
        return "address_near" if _NUMBERED.search(short) else "place_same"
    ta, tb = place_tokens(a), place_tokens(b)
    shared = set(ta) & set(tb)
    if not shared:
        return "address_differs"
    # The same estate, different buildings (幸福里3栋 / 幸福里10栋): different homes.
    numbered = _numbered_tokens(a), _numbered_tokens(b)
    if numbered[0] and numbered[1] and not numbered[0] & numbered[1]:
        return "address_differs"
    return "place_same"


# The name signal of two names cleaned already (clean_name), remembered.
name_pair = _name


def name_signal(a: str | None, b: str | None) -> str | None:
    """The name signal alone (a cheap first look before scoring a candidate)."""
    return _name(clean_name(a), clean_name(b))


def signals(a: Profile, b: Profile) -> list[str]:
    """The signals that hold between two profiles (names of settings().signals)."""
    return _signals(a, b, _name(clean_name(a.name), clean_name(b.name)), address=True)


def _signals(a: Profile, b: Profile, name: str | None, *, address: bool) -> list[str]:
    """`signals` with the name signal given (the caller may have it already), and without
    the address one when `address` is false (could_reach puts its best in its place)."""
    found: list[str] = []
    windows = settings().windows
    if a.id_index and b.id_index:
        found.append("id_same" if a.id_index == b.id_index else "id_differs")
    age = _age(a, b)
    if name == "name_one_off" and age == "age_differs":
        name = "name_differs"  # 王小明 9 and 王小刚 6 at one address: brothers, not one boy
    found += [name, age]
    if a.gender in ("male", "female") and b.gender in ("male", "female"):
        found.append("gender_same" if a.gender == b.gender else "gender_differs")
    if address:
        found.append(_address(a.address, b.address))
    found.append(_jurisdiction(a.jurisdiction, b.jurisdiction))
    if a.phones & b.phones:
        found.append("phone_same")
    days = abs((a.at - b.at).days) if a.at and b.at else None
    if days is not None and days <= windows.near_days:
        found.append("time_near")
    elif days is not None and days > windows.far_days and not (
            clean_name(a.name) or clean_name(b.name)):
        # Two unnamed children at one spot months apart: two incidents, not one.
        found.append("time_far")
    if a.categories & b.categories:
        found.append("category_same")
    elif a.categories and b.categories:
        found.append("category_differs")
    if a.text and b.text:
        ba, bb = bigrams(a.text), bigrams(b.text)
        if ba and bb and len(ba & bb) / len(ba | bb) >= windows.story_overlap:
            found.append("story_similar")
    return [s for s in found if s]


# Scores are rounded to four places: a bound this far under the floor is safely under it.
_MARGIN = 0.01
_ADDRESS = ("address_same", "address_near", "place_same", "address_differs")


@cache
def _weights() -> dict[str, float]:
    return {name: signal.weight for name, signal in settings().signals.items()}


@cache
def _bests() -> tuple[float, ...]:
    """What each signal group can add at most: gender, address, jurisdiction, phone, time,
    category, story."""
    w = _weights()
    groups = (("gender_same", "gender_differs"), _ADDRESS,
              ("jurisdiction_same", "jurisdiction_differs"), ("phone_same",),
              ("time_near", "time_far"), ("category_same", "category_differs"),
              ("story_similar",))
    return tuple(max(0.0, *(w[n] for n in group)) for group in groups)


def _address_best() -> float:
    return _bests()[1]


def _rest_best(a: Profile, b: Profile) -> float:
    """At most what the signals other than ID, name and age add to score(a, b): each that
    could hold at its best (the dear ones, address and story, without computing them)."""
    both = (
        a.gender and b.gender,
        a.address and b.address,
        a.jurisdiction and b.jurisdiction,
        a.phones and b.phones and a.phones & b.phones,
        a.at and b.at,
        a.categories and b.categories,
        a.text and b.text,
    )  # in the order of _bests()
    return sum((w for w, held in zip(_bests(), both, strict=True) if held), 0.0)


def could_reach(a: Profile, b: Profile, floor: float, name: str | None) -> bool:
    """False only when `score(a, b)` is certainly below `floor`: every signal exactly (the
    name signal given) but the address, which is dearest (normalizing, containment, place
    tokens), at its best. Lets a caller that keeps only scores above a floor skip most
    candidates' scoring without changing any result. ID, name and age come first, with the
    rest at its best: on a ledger most namesakes are ruled out by their age alone."""
    if floor <= 0 or floor >= 1:
        return True
    w = _weights()
    need = math.log(floor / (1 - floor)) - _MARGIN
    bias = settings().bias
    total = bias
    if a.id_index and b.id_index:
        total += w["id_same" if a.id_index == b.id_index else "id_differs"]
    age = _age(a, b)
    if name == "name_one_off" and age == "age_differs":
        name = "name_differs"
    if name:
        total += w[name]
    if age:
        total += w[age]
    if total + _rest_best(a, b) < need:
        return False
    total = bias + _address_best()
    for held in _signals(a, b, name, address=False):
        total += w[held]
    return total >= need


def score(a: Profile, b: Profile) -> Match:
    """The logistic of the bias and the signals' weights, with the reasons staff read:
    the labels of the signals that speak for a match, strongest first."""
    rules = settings()
    table = rules.signals
    held = signals(a, b)
    total = rules.bias + sum(table[s].weight for s in held)
    positive = sorted(
        (s for s in held if table[s].weight > 0 and table[s].label), key=lambda s: -table[s].weight
    )
    return Match(
        score=round(1 / (1 + math.exp(-total)), 4),
        signals=tuple(held),
        reasons=tuple(str(table[s].label) for s in positive),
    )
