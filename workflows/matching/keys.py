"""Blocking keys: the few exact strings two profiles of one child are likely to share.

Stored as a text[] with a GIN index (plain PostgreSQL, no pg_trgm), so finding candidates is
an index lookup (`keys && ARRAY[...]`) and only they are scored. One key per way a match can
be written differently: surname + last syllable by sound (王晓明 / 王小明, a middle
character off), and for three-character names the initials (a last character off) and the
given name by sound (a surname misheard), each phone's blind index,
each named place of the address (幸福里, 幸福里3栋), the ID number's blind index, and the
jurisdiction with the week (an unnamed child at an unnamed spot: place + time + story).

Stored and looked up as keyed hashes (`sealed`): the kind's prefix and an HMAC of the whole
key under the blind-index key (db.crypto), so the column holds no name, sound, phone or place
a dump could read, and equality, all blocking needs, is kept.
"""

from datetime import datetime, time, timedelta

from db.crypto import keyed_hash
from workflows.matching.normalize import clean_name, fold, place_tokens, syllables
from workflows.matching.score import Profile, is_root

# The weeks a report about an unnamed child looks at, in days from its own: this one and
# the weeks either side.
_WEEKS_AROUND = (-7, 0, 7)


def _week(code: str, at: datetime) -> str:
    year, week, _ = at.isocalendar()
    return f"w:{code}:{year}-{week:02d}"


def sealed(plain: list[str]) -> list[str]:
    """Each key as its kind ("f:", "p:", …) and 128 bits of its keyed hash."""
    return [key[:2] + keyed_hash(key.encode())[:32] for key in plain]


def _asks_place_and_week(profile: Profile) -> bool:
    return (clean_name(profile.name) == "" and bool(profile.jurisdiction)
            and profile.at is not None and not is_root(profile.jurisdiction))


def keys(profile: Profile) -> list[str]:
    """The keys stored with a report or child record."""
    return sealed(plain_keys(profile))


def plain_keys(profile: Profile) -> list[str]:
    """The keys as written (f:wang~ming), before they are hashed."""
    out: list[str] = []
    name = clean_name(profile.name)
    if len(name) >= 2:
        sounds = [fold(s) for s in syllables(name)]
        out.append("f:" + sounds[0] + "~" + sounds[-1])
        if len(name) >= 3:
            # Two letters or one syllable would each bring a large share of the table.
            out.append("n:" + "".join(s[0] for s in sounds if s))
            out.append("g:" + "".join(sounds[1:]))
    out.extend("p:" + phone for phone in sorted(profile.phones))
    out.extend("a:" + token for token in place_tokens(profile.address))
    if profile.id_index:
        out.append("i:" + profile.id_index)
    if profile.jurisdiction and profile.at and not is_root(profile.jurisdiction):
        out.append(_week(profile.jurisdiction, profile.at))
    return list(dict.fromkeys(out))


def query_keys(profile: Profile) -> list[str]:
    """The keys to look for, the selective ones only (each broad key would bring thousands
    of candidates on a large table): a building rather than its whole estate when the
    address names one, and the place-and-week keys only for an unnamed child (a named one
    is found by name), this week and the weeks either side."""
    stored = plain_keys(profile)
    places = [k for k in stored if k.startswith("a:")]
    numbered = {k for k in places if any(ch.isdigit() for ch in k)}
    out = [k for k in stored if not k.startswith(("a:", "w:"))]
    out += sorted(numbered) if numbered else places
    if _asks_place_and_week(profile):
        out += [_week(profile.jurisdiction, profile.at + timedelta(days=d))
                for d in _WEEKS_AROUND]
    return sealed(list(dict.fromkeys(out)))


def week_span(profile: Profile) -> tuple[datetime, datetime] | None:
    """The times the place-and-week keys `query_keys` asks for can hold (a day wider each
    side, whatever time zone a report's keys were made in), for a lookup by place and
    time; None when it asks for none."""
    if not _asks_place_and_week(profile):
        return None
    at = profile.at
    first = (at + timedelta(days=_WEEKS_AROUND[0])).date()
    last = (at + timedelta(days=_WEEKS_AROUND[-1])).date()
    start = datetime.combine(first - timedelta(days=first.weekday() + 1), time(), at.tzinfo)
    end = datetime.combine(last + timedelta(days=8 - last.weekday()), time(), at.tzinfo)
    return start, end
