"""Importing a district's ledger (基础台帐) or a canvassing round (排查摸底) of children.

A file (XLSX or CSV, the columns named in Chinese as districts keep them) is read a chunk at
a time, so memory stays flat on a large ledger; each row is matched against the existing
children (an ID number through its blind index, otherwise the matching rules over the
blocking keys): **new** (no existing child like it), **matched** (the same child, nothing
contradicts), **conflicting** (probably the same child but something contradicts, or only
possibly the same: staff decide), or **invalid** (the row itself is wrong, with why). A dry
run reports and writes nothing (listing what a matched row would change); an import
writes new children, fills what matched records lack (never overwrites) and adds a guardian
they do not have, marks them seen, and keeps conflicting rows for staff. A
canvassing round then lists the children of the place not seen for the configured period.
"""

import bisect
import csv
import io
import sys
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

import sqlalchemy as sa
from fastapi import Request
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import array as pg_array
from sqlalchemy.types import NullType

from channels.errors import ApiError
from db.crypto import blind_index, name_index, phone_index
from db.models_children import Child, ChildEvent, Guardian, LedgerImport
from dispatch.children.matching_service import child_keys, guardian_phones_of_child, rekey_children
from dispatch.children.records import GUARDIAN_STATES, child_filter, set_id_number
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal
from workflows.errors import TooLarge
from workflows.matching import score, thresholds
from workflows.matching.keys import query_keys
from workflows.matching.normalize import clean_name
from workflows.matching.profiles import age_at, child_profile
from workflows.matching.score import Profile, could_reach, name_pair, settings
from workflows.phones import normalize_phone
from workflows.places import jurisdiction_from_address
from workflows.reference import category_labels, jurisdiction_labels, jurisdictions

CHUNK = 500
MAX_ROWS = 100_000
SHOWN_ROWS = 1000
# Column headings as ledgers write them → our fields.
COLUMNS = {
    "姓名": "name", "儿童姓名": "name", "身份证号": "id_number", "身份证号码": "id_number",
    "性别": "gender", "出生日期": "birth_date", "出生年月": "birth_date", "年龄": "age",
    "户籍": "hukou", "户籍地": "hukou", "户籍地址": "hukou", "现住址": "address",
    "住址": "address", "居住地址": "address", "地址": "address", "困境类型": "categories",
    "类别": "categories", "学校": "school", "就读学校": "school", "班级": "school_class",
    "辖区": "jurisdiction", "监护人": "guardian_name", "监护人姓名": "guardian_name",
    "监护人关系": "guardian_relation", "与儿童关系": "guardian_relation",
    "监护人电话": "guardian_phone", "联系电话": "guardian_phone", "监护状况": "guardian_state",
    "监护人状况": "guardian_state", "走访日期": "seen_on", "排查日期": "seen_on",
}
GENDERS = {"男": "male", "女": "female", "male": "male", "female": "female"}


@dataclass
class Row:
    number: int
    fields: dict[str, Any]
    status: str = "new"
    child_id: int | None = None
    reasons: list[str] = field(default_factory=list)
    message: str | None = None
    # What an import writes (or would write) into the matched child's file (`_plan`).
    changes: list[str] = field(default_factory=list)


@dataclass
class ImportReport:
    kind: str
    filename: str
    dry_run: bool
    counts: dict[str, int] = field(
        default_factory=lambda: {"new": 0, "matched": 0, "conflicting": 0, "invalid": 0})
    rows: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False
    not_seen: list[dict[str, Any]] = field(default_factory=list)
    import_id: int | None = None

    def add(self, row: Row) -> None:
        self.counts[row.status] += 1
        if len(self.rows) >= SHOWN_ROWS:
            self.truncated = True
            return
        self.rows.append({"row": row.number, "status": row.status, "child_id": row.child_id,
                          "name": row.fields.get("name"), "reasons": row.reasons,
                          "message": row.message, "changes": row.changes})

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "filename": self.filename, "dry_run": self.dry_run,
                "counts": self.counts, "rows": self.rows, "truncated": self.truncated,
                "not_seen": self.not_seen, "import_id": self.import_id}


def _cells(filename: str, content: bytes) -> Iterator[list[Any]]:
    """The file's rows as lists of cells, streamed."""
    if filename.lower().endswith((".xlsx", ".xlsm")):
        try:
            book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a broken file
            raise ApiError(422, "bad_file", "无法读取该 Excel 文件，请确认是 .xlsx 格式") from exc
        for values in book.active.iter_rows(values_only=True):
            yield list(values)
        return
    if filename.lower().endswith(".csv"):
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = content.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise ApiError(422, "bad_file", "无法识别 CSV 文件的编码，请另存为 UTF-8")
        yield from csv.reader(io.StringIO(text))
        return
    raise ApiError(422, "bad_file_type", "请上传 .xlsx 或 .csv 格式的台账")


_PLACES_BY_NAME = None


def _place(value: str) -> str | None:
    global _PLACES_BY_NAME
    if _PLACES_BY_NAME is None:
        _PLACES_BY_NAME = {n: c for c, n in jurisdiction_labels().items()}
        _PLACES_BY_NAME.update({c: c for c in jurisdiction_labels()})
    return _PLACES_BY_NAME.get(value.strip()) or jurisdiction_from_address(value)


def _date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip().replace("/", "-").replace(".", "-")
    text = text.replace("年", "-").replace("月", "-").replace("日", "")
    return date.fromisoformat("-".join(p.zfill(2) for p in text.split("-")))


def parse_row(number: int, header: list[str | None], values: list[Any],
              default_place: str | None) -> Row:
    raw = {COLUMNS.get(str(h).strip()): v for h, v in zip(header, values, strict=False)
           if h is not None and str(h).strip() in COLUMNS and v not in (None, "")}
    row = Row(number, {})
    f = row.fields
    try:
        f["name"] = str(raw.get("name", "")).strip() or None
        if not f["name"]:
            raise ValueError("缺少姓名")
        if "id_number" in raw:
            idn = "".join(str(raw["id_number"]).split()).upper()
            if len(idn) not in (15, 18):
                raise ValueError("身份证号应为15或18位")
            f["id_number"] = idn
        if "gender" in raw:
            if str(raw["gender"]).strip() not in GENDERS:
                raise ValueError("性别应填“男”或“女”")
            f["gender"] = GENDERS[str(raw["gender"]).strip()]
        if "birth_date" in raw:
            try:
                f["birth_date"] = _date(raw["birth_date"])
            except ValueError as exc:
                raise ValueError("出生日期格式应为 2015-03-08") from exc
        if "age" in raw:
            f["age"] = int(str(raw["age"]).strip().rstrip("岁"))
            if not 0 <= f["age"] <= 17:
                raise ValueError("年龄应为0到17岁")
        for name in ("hukou", "address", "school", "school_class"):
            if name in raw:
                f[name] = str(raw[name]).strip()[:200]
        if "categories" in raw:
            by_label = {v: k for k, v in category_labels().items()}
            words = [w.strip() for w in str(raw["categories"]).replace("，", "、")
                     .replace(",", "、").replace(";", "、").split("、") if w.strip()]
            unknown = [w for w in words if w not in by_label and w not in category_labels()]
            if unknown:
                raise ValueError(f"无法识别的困境类型：{'、'.join(unknown)}")
            f["categories"] = [by_label.get(w, w) for w in words]
        place = _place(str(raw["jurisdiction"])) if "jurisdiction" in raw else default_place
        if "jurisdiction" in raw and place is None:
            raise ValueError("辖区名称无法识别")
        f["jurisdiction_code"] = place
        if "guardian_name" in raw or "guardian_phone" in raw:
            phone = None
            if "guardian_phone" in raw:
                phone = normalize_phone(str(raw["guardian_phone"]).strip())
                if phone is None:
                    raise ValueError("监护人电话无效")
            states = {v: k for k, v in GUARDIAN_STATES.items()}
            state_word = str(raw.get("guardian_state", "")).strip()
            f["guardian"] = {"name": str(raw.get("guardian_name", "")).strip() or None,
                             "relation": str(raw.get("guardian_relation", "监护人")).strip(),
                             "phone": phone,
                             "state": states.get(state_word, state_word
                                                 if state_word in GUARDIAN_STATES else "present")}
        if "seen_on" in raw:
            f["seen_on"] = _date(raw["seen_on"])
    except ValueError as exc:
        row.status, row.message = "invalid", f"第{number}行：{exc}"
    return row


def _profile(f: dict[str, Any]):
    return child_profile(
        name=f.get("name"), gender=f.get("gender"), birth_date=f.get("birth_date"),
        age=f.get("age"), age_given_on=date.today() if f.get("age") is not None else None,
        address=f.get("address"), jurisdiction=f.get("jurisdiction_code"),
        phones=[phone_index(f["guardian"]["phone"])] if f.get("guardian", {}).get("phone")
        else [],
        categories=f.get("categories") or (),
        id_index=blind_index("id", f["id_number"]) if f.get("id_number") else None,
    )


def _contradictions(f: dict[str, Any], child: Child) -> list[str]:
    out = []
    if f.get("id_number") and child.id_index and \
            blind_index("id", f["id_number"]) != child.id_index:
        out.append("身份证号不同")
    if f.get("birth_date") and child.birth_date and f["birth_date"] != child.birth_date:
        out.append("出生日期不同")
    if f.get("gender") and child.gender and f["gender"] != child.gender:
        out.append("性别不同")
    return out


def _row_keys(profile) -> list[str]:
    """A ledger row always names its child: only a record with a name like it (or the same
    ID number) can reach the threshold, so only the name and ID keys are looked up."""
    return [k for k in query_keys(profile) if k.startswith(("f:", "n:", "g:", "i:"))]


async def _candidates(session, principal: Principal, wanted: list[str]) -> list[Any]:
    """The children sharing any of the chunk's keys, each with the keys it shares, by id.

    One statement for the chunk, a GIN lookup per key (`unnest` joined on the index): a plain
    `match_keys && ARRAY[…]` of a thousand keys is planned as a sequential scan comparing
    every row's keys with all of them (8 s a chunk at 150,000 children, against about 1 s).
    The columns a match needs, not whole records (nothing decrypted)."""
    key = func.unnest(sa.cast(sa.bindparam("wanted", wanted, type_=ARRAY(sa.Text)),
                              ARRAY(sa.Text))).table_valued("key").render_derived(name="k")
    stmt = (
        select(*_MATCH_COLUMNS,
               # Lists as the driver gives them (SQLAlchemy's array processing, per value,
               # was a tenth of the chunk's time).
               sa.type_coerce(Child.categories, NullType()).label("categories"),
               guardian_phones_of_child(),
               sa.type_coerce(func.array_agg(key.c.key), NullType()).label("hits"))
        .select_from(key)
        .join(Child, Child.match_keys.overlap(pg_array([key.c.key])))
        .where(Child.merged_into_id.is_(None), child_filter(principal))
        .group_by(Child.id)
        # Candidates in id order: the first of equal scores is the oldest record, as it was
        # when the rows came in the table's (insertion) order.
        .order_by(Child.id)
    )
    # Through the session: the name is ciphertext, and SQLAlchemy's Core path compares the
    # cached statement's columns with `==`, which a sealed column refuses (db.crypto).
    return list((await session.execute(stmt)).all())


# The children an import's pool keeps (the least recently asked keys go first), ~2 KB each
# (the columns a match needs, the profile, the lists): ~400 MiB at most on any table, where
# the pool grew with the table before. A chunk's own candidates stay whatever the cap: with
# bench_ledger's dense names one chunk reaches ~77,000 of 150,000 children and four chunks
# nearly all, so a cap under the table makes each chunk fetch again what the last let go
# (5,000-row dry run: cap 50,000 → CPU 37 s against 18 s, peak RSS only ~60 MiB lower; a
# 20,000-row import, which adds ~11,500 children, at cap 150,000: CPU 82.5 s against 75.3 s).
POOL_CHILDREN = 200_000


class _Pool:
    """The candidates of one import, each key's children fetched once while it is kept and
    each child's profile made once.

    A ledger's chunks ask for the same names again and again (at 150,000 children one
    chunk's name keys brought half the table, and the next chunk the same half): here a key
    is looked up the first time a row asks for it and kept while it is among the recently
    asked (at most POOL_CHILDREN children beyond the chunk's own), its children grouped by
    name (a row's name is compared with each name once, not with each namesake). What the
    import itself writes (new children, fields filled into matched ones) is read back after
    each chunk (`refresh`), so a later row sees the table as a fresh lookup would; a key let
    go is looked up again when asked, so what is kept never changes a decision."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self.cap = POOL_CHILDREN
        # key → the cleaned names of the children holding it → their ids, ascending; the
        # least recently asked key first
        self.groups: OrderedDict[str, dict[str, list[int]]] = OrderedDict()
        self.rows: dict[int, Any] = {}  # id → the columns a match needs
        self.names: dict[int, str] = {}  # id → its name cleaned
        self.member: dict[int, list[str]] = {}  # id → the kept keys it is listed under
        self.profiles: dict[int, Any] = {}  # id → its profile, made when first needed

    def _keep(self, child: Any, hits: list[str]) -> None:
        name = sys.intern(clean_name(child.name))
        if child.id not in self.rows:
            self.rows[child.id] = _lean(child)
        self.names[child.id] = name
        self.member.setdefault(child.id, []).extend(hits)
        for key in hits:
            bisect.insort(self.groups[key].setdefault(name, []), child.id)

    def _forget(self, child_id: int) -> None:
        for kept in (self.rows, self.names, self.member, self.profiles):
            kept.pop(child_id, None)

    def _let_go(self, asked: set[str]) -> None:
        """Drop the least recently asked keys (not the chunk's own) while the pool holds
        more than its cap, and the children no kept key lists."""
        while len(self.rows) > self.cap:
            key = next(iter(self.groups))
            if key in asked:
                return  # the rest were all asked for by this chunk
            for ids in self.groups.pop(key).values():
                for child_id in ids:
                    keys = self.member[child_id]
                    keys.remove(key)
                    if not keys:
                        self._forget(child_id)

    async def load(self, session, wanted: list[str]) -> None:
        """Look up the keys not kept, mark all of them as just asked, let go of the oldest."""
        missing = [k for k in wanted if k not in self.groups]
        for key in wanted:
            if key in self.groups:
                self.groups.move_to_end(key)
            else:
                self.groups[key] = {}
        if missing:
            for child in await _candidates(session, self.principal, missing):
                self._keep(child, child.hits)
        self._let_go(set(wanted))

    async def refresh(self, session, touched: list[int]) -> None:
        """Children the import wrote: off the lists they were on, back on those their keys
        are now on (if still in the principal's scope), with their columns re-read."""
        for child_id in touched:
            name = self.names.get(child_id)
            for key in self.member.get(child_id, ()):
                self.groups[key][name].remove(child_id)
            self._forget(child_id)
        if not touched:
            return
        stmt = (
            select(*_MATCH_COLUMNS,
                   sa.type_coerce(Child.categories, NullType()).label("categories"),
                   guardian_phones_of_child(),
                   sa.type_coerce(Child.match_keys, NullType()).label("hits"))
            .where(Child.id.in_(touched), Child.merged_into_id.is_(None),
                   child_filter(self.principal))
        )
        for child in (await session.execute(stmt)).all():
            hits = [k for k in dict.fromkeys(child.hits or ()) if k in self.groups]
            if hits:
                self._keep(child, hits)

    def profile(self, child_id: int):
        found = self.profiles.get(child_id)
        if found is None:
            found = self.profiles[child_id] = _candidate_profile(self.rows[child_id])
        return found

    def near(self, profile, keys: list[str]) -> list[tuple[int, str]]:
        """The children sharing a key with the profile whose name may be its child's (or
        that have its ID number), with their name signal, in the order a scan of the keys'
        lists in turn (each by id) first meets them: the scores' ties fall that way."""
        mine, id_index = clean_name(profile.name), profile.id_index
        own_id = "i:" + id_index if id_index else None
        found: dict[int, tuple[int, str]] = {}
        for place, key in enumerate(keys):
            for name, ids in self.groups.get(key, {}).items():
                signal = name_pair(mine, name)
                if signal != "name_differs":
                    for child_id in ids:
                        if child_id not in found:  # keys are walked in order: first is first
                            found[child_id] = (place, signal)
                elif key == own_id:
                    # Another name and another ID number cannot be this child; one with
                    # this ID number is on this key's list, met first on the earliest of
                    # our keys it is listed under (as a walk filtering each list would).
                    for child_id in ids:
                        if child_id not in found:
                            first = min(keys.index(k) for k in self.member[child_id]
                                        if k in keys)
                            found[child_id] = (first, signal)
        order = sorted(found, key=lambda i: (found[i][0], i))
        return [(i, found[i][1]) for i in order]


async def _judge(session, pool: _Pool, rows: list[Row]) -> None:
    """Decide each valid row of a chunk, with the chunk's new keys looked up at once."""
    valid = [r for r in rows if r.status != "invalid"]
    profiles = {r.number: _profile(r.fields) for r in valid}
    wanted = sorted({k for p in profiles.values() for k in _row_keys(p)})
    if not wanted:
        return
    await pool.load(session, wanted)
    match_at, suggest = thresholds().ledger_match, thresholds().suggest
    floor = min(match_at, suggest)  # under both, a score decides nothing
    for row in valid:
        profile = profiles[row.number]
        # Only those not certainly under the floor (they can be neither the match nor the
        # runner-up) are scored: most candidates, whose scoring was most of the time.
        kept = [child_id for child_id, name in pool.near(profile, _row_keys(profile))
                if could_reach(profile, pool.profile(child_id), floor, name)]
        scored = sorted(((score(profile, pool.profile(c)), c) for c in kept),
                        key=lambda mc: -mc[0].score)
        if not scored or scored[0][0].score < suggest:
            continue
        best, child_id = scored[0]
        row.child_id = child_id
        row.reasons = list(best.reasons)
        contradictions = _contradictions(row.fields, pool.rows[child_id])
        runner_up = len(scored) > 1 and scored[1][0].score >= match_at
        if best.score >= match_at and not contradictions and not runner_up:
            row.status = "matched"
        else:
            row.status = "conflicting"
            row.reasons += contradictions + (["与多份档案相似"] if runner_up else [])


_MATCH_COLUMNS = (Child.id, Child.name, Child.gender, Child.birth_date, Child.age,
                  Child.age_given_on, Child.address, Child.jurisdiction_code, Child.id_index)


class _Candidate(NamedTuple):
    """The columns a match needs (`_MATCH_COLUMNS`, the categories and the guardians'
    phones' blind indexes), as a pool keeps them: no keys, and the strings a city repeats
    (names, places, genders) shared."""

    id: int
    name: str | None
    gender: str | None
    birth_date: date | None
    age: int | None
    age_given_on: date | None
    address: str | None
    jurisdiction_code: str | None
    id_index: str | None
    categories: tuple[str, ...]
    phones: frozenset[str]


def _shared(text: str | None) -> str | None:
    return sys.intern(text) if text else text


_TUPLES: dict[tuple[str, ...], tuple[str, ...]] = {}  # a city has a few sets of categories
_NO_PHONES: frozenset[str] = frozenset()  # most children's guardians' phones: one set


def _lean(row: Any) -> _Candidate:
    categories = tuple(_shared(c) for c in row.categories or ())
    return _Candidate(row.id, _shared(row.name), _shared(row.gender), row.birth_date,
                      row.age, row.age_given_on, _shared(row.address),
                      _shared(row.jurisdiction_code), row.id_index,
                      _TUPLES.setdefault(categories, categories),
                      frozenset(row.phones) if row.phones else _NO_PHONES)


@lru_cache(maxsize=1024)
def _frozen(categories: tuple[str, ...]) -> frozenset[str]:
    return frozenset(categories)


def _candidate_profile(child: _Candidate) -> Profile:
    """`child_profile_of(child, its guardians' phones)` (today's age), with the sets every
    profile of a pool would hold a copy of shared: two frozensets were half a pooled
    profile's memory. The phones as `records.candidates_for_case` scores a child: a row
    giving a guardian's number on file has the "same phone" signal (issue 12)."""
    return Profile(
        name=child.name,
        age=age_at(child.birth_date, child.age, child.age_given_on, datetime.now().date()),
        gender=child.gender, address=child.address, jurisdiction=child.jurisdiction_code,
        phones=child.phones, at=None, categories=_frozen(child.categories),
        id_index=child.id_index)


class _NewChild(NamedTuple):
    """A new child's columns as the import writes them (what `Child` would hold before its
    flush), for one multi-row INSERT instead of an ORM object per row."""

    name: str
    gender: str | None
    birth_date: date | None
    age: int | None
    age_given_on: date | None
    hukou: str | None
    address: str | None
    jurisdiction_code: str | None
    school: str | None
    school_class: str | None
    categories: list[str]
    id_number: str | None
    id_index: str | None
    last_seen_at: datetime | None


def _new_child(f: dict[str, Any], kind: str) -> _NewChild:
    # As records.set_id_number cleans it.
    idn = "".join((f.get("id_number") or "").split()).upper() or None
    return _NewChild(
        name=f["name"], gender=f.get("gender"), birth_date=f.get("birth_date"),
        age=f.get("age"), age_given_on=date.today() if f.get("age") is not None else None,
        hukou=f.get("hukou"), address=f.get("address"),
        jurisdiction_code=f.get("jurisdiction_code"), school=f.get("school"),
        school_class=f.get("school_class"), categories=f.get("categories") or [],
        id_number=idn, id_index=blind_index("id", idn) if idn else None,
        last_seen_at=_seen_at(f) if kind == "canvass" else None,
    )


def _seen_at(f: dict[str, Any]) -> datetime:
    day = f.get("seen_on")
    return datetime(day.year, day.month, day.day, tzinfo=UTC) if day else datetime.now(UTC)


_CHILDREN = Child.__table__
_EVENTS = ChildEvent.__table__
_GUARDIANS = Guardian.__table__

# The fields a matched row fills in when the child's file lacks them (never overwrites),
# as the dry run lists them; the ID number after them.
FILLED = ("gender", "birth_date", "hukou", "address", "school", "school_class",
          "jurisdiction_code")
FIELD_LABELS = {"gender": "性别", "birth_date": "出生日期", "hukou": "户籍地",
                "address": "现住址", "school": "学校", "school_class": "班级",
                "jurisdiction_code": "辖区", "id_number": "身份证号"}


class _Plan(NamedTuple):
    """What a matched row writes into its child's file: the fields it fills, and its
    guardian when the file has no guardian like it."""

    filled: list[str]
    guardian: dict[str, Any] | None


def _person(name: str | None, relation: str | None) -> tuple[str, str] | None:
    """A guardian as the ledger names them (spaces dropped); None without a name."""
    name = "".join((name or "").split())
    return (name, "".join((relation or "").split())) if name else None


async def _plan(session, rows: list[Row]) -> dict[int, _Plan]:
    """For the matched rows of a chunk, by child id: what an import writes into each
    child's file, the same for the dry run (which lists it as the row's `changes`) and
    the import (`_write`, which does it). A row's guardian is new unless the file has a
    guardian with the same number (its blind index) or the same name and relation (a
    later ledger giving a guardian's number was lost: issue 12). Two queries a chunk, of
    the columns needed (the guardians' names decrypted, their numbers not)."""
    matched = {r.child_id: r for r in rows if r.status == "matched"}
    if not matched:
        return {}
    ids = list(matched)
    on_file: dict[int, tuple[set[str], set[tuple[str, str]]]] = {i: (set(), set()) for i in ids}
    for g in (await session.execute(
            select(Guardian.child_id, Guardian.relation, Guardian.name, Guardian.phone_index)
            .where(Guardian.child_id.in_(ids)))).all():
        phones, people = on_file[g.child_id]
        if g.phone_index:
            phones.add(g.phone_index)
        if person := _person(g.name, g.relation):
            people.add(person)
    plans: dict[int, _Plan] = {}
    for child in (await session.execute(
            select(Child.id, *(getattr(Child, n) for n in FILLED),
                   Child.id_number.is_(None).label("no_id_number"))
            .where(Child.id.in_(ids)))).all():
        row = matched[child.id]
        f = row.fields
        filled = [n for n in FILLED
                  if f.get(n) is not None and getattr(child, n) in (None, "")]
        if f.get("id_number") and child.no_id_number:
            filled.append("id_number")
        guardian = f.get("guardian")
        phones, people = on_file[child.id]
        if guardian and (
                (guardian["phone"] and phone_index(guardian["phone"]) in phones)
                or _person(guardian["name"], guardian["relation"]) in people):
            guardian = None
        plans[child.id] = _Plan(filled, guardian)
        row.changes = (["补充" + "、".join(FIELD_LABELS[n] for n in filled)] if filled else []) \
            + ([f"新增监护人（{guardian['relation']}）"] if guardian else [])
    return plans


def _guardian_values(child_id: int, guardian: dict[str, Any]) -> dict[str, Any]:
    return {"child_id": child_id, "relation": guardian["relation"], "name": guardian["name"],
            "phone": guardian["phone"], "phone_index": phone_index(guardian["phone"]),
            "state": guardian["state"]}


async def _write(session, principal: Principal, rows: list[Row], kind: str,
                 import_id: int, plans: dict[int, _Plan]) -> list[int]:
    """Write a chunk's decisions (the matched rows' as `_plan` planned them); returns the
    ids of the children whose matching columns or keys it changed (new ones, those given
    fields they lacked, those given a guardian).

    The new children, their guardians and every event go in as multi-row INSERTs of
    plain values (the columns an ORM flush of the same objects writes: the derived
    name_index and match_keys included, created_at/updated_at left to the database):
    an ORM object per row was most of an import's writing time."""
    touched: list[int] = []
    events: list[dict[str, Any]] = []
    actor, actor_id = principal.label, principal.id or None
    matched = {r.child_id: r for r in rows if r.status == "matched"}
    if matched:
        filled_in: list[Child] = []
        added: list[dict[str, Any]] = []
        for child in (await session.execute(
                select(Child).where(Child.id.in_(list(matched))))).scalars():
            f = matched[child.id].fields
            filled, guardian = plans[child.id]
            for name in filled:
                if name == "id_number":
                    set_id_number(child, f["id_number"])
                else:
                    setattr(child, name, f[name])
            if kind == "canvass":
                child.last_seen_at = max(filter(None, [child.last_seen_at, _seen_at(f)]))
            if filled or guardian:
                filled_in.append(child)
                touched.append(child.id)
            events.append({"child_id": child.id, "event": "seen" if kind == "canvass"
                           else "imported", "data": {"import": import_id, "fields": filled}})
            if guardian:
                added.append(_guardian_values(child.id, guardian))
                # As a guardian added on the file page (records.add_guardian), with the
                # import it came from.
                events.append({"child_id": child.id, "event": "guardian_added",
                               "data": {"relation": guardian["relation"],
                                        "state": guardian["state"], "import": import_id}})
        if added:
            await session.execute(sa.insert(_GUARDIANS), added)
        # Their keys with their guardians' phones (a new one's too), as every rebuild of a
        # record's keys.
        await rekey_children(session, filled_in)
        await session.flush()
    fresh = [r for r in rows if r.status == "new"]
    if fresh:
        values = []
        for row in fresh:
            child = _new_child(row.fields, kind)
            phone = row.fields.get("guardian", {}).get("phone")
            values.append({
                **child._asdict(), "name_index": name_index(child.name),
                # Its guardian is inserted below: its phone is the row's.
                "match_keys": child_keys(child, [phone_index(phone)] if phone else []),
                "risk_level": None, "merged_into_id": None})
        ids = (await session.execute(
            sa.insert(_CHILDREN).returning(_CHILDREN.c.id, sort_by_parameter_order=True),
            values)).scalars().all()
        guardians = []
        for row, child_id in zip(fresh, ids, strict=True):
            row.child_id = child_id
            guardian = row.fields.get("guardian")
            if guardian:
                guardians.append(_guardian_values(child_id, guardian))
            events.append({"child_id": child_id, "event": "created",
                           "data": {"from": kind, "import": import_id}})
            touched.append(child_id)
        if guardians:
            await session.execute(sa.insert(_GUARDIANS), guardians)
    if events:
        await session.execute(sa.insert(_EVENTS), [
            {**e, "actor": actor, "actor_id": actor_id, "case_id": None, "reason": None}
            for e in events])
    return touched


def _in_scope(principal: Principal, code: str | None) -> bool:
    if not code:
        return bool(principal.scope_path) and principal.scope_path.count("/") == 1
    parents = {c: p for c, _, _, p in jurisdictions()}
    while code:
        if code == principal.jurisdiction:
            return True
        code = parents.get(code) or ""
    return False


async def import_file(sessions, principal: Principal, filename: str, content: bytes, *,
                      kind: str = "ledger", dry_run: bool = True,
                      jurisdiction: str | None = None,
                      request: Request | None = None) -> ImportReport:
    """Read, match and (unless a dry run) write one ledger; one transaction, so a failed
    import leaves nothing half-written."""
    if jurisdiction and jurisdiction not in jurisdiction_labels():
        raise ApiError(422, "unknown_jurisdiction", "辖区代码无效，请从辖区列表中选择")
    report = ImportReport(kind=kind, filename=filename[:200], dry_run=dry_run)
    cells = _cells(filename, content)
    header = next(cells, None)
    if not header or not {COLUMNS.get(str(h).strip()) for h in header if h} & {"name"}:
        names = "、".join(dict.fromkeys(COLUMNS))
        raise ApiError(422, "bad_header", f"第一行应为列名，至少包含“姓名”；可用列名：{names}")
    async with sessions() as session, session.begin():
        record = None
        if not dry_run:
            record = LedgerImport(kind=kind, filename=report.filename,
                                  jurisdiction_code=jurisdiction, actor=principal.label)
            session.add(record)
            await session.flush()
            report.import_id = record.id
        chunk: list[Row] = []
        pool = _Pool(principal)  # candidates looked up, for every chunk
        places: set[str | None] = set()
        number = 1
        for values in cells:
            number += 1
            if number > MAX_ROWS + 1:
                raise TooLarge("too_many_rows", f"一次最多导入 {MAX_ROWS} 行，请分批导入")
            if not any(v not in (None, "") for v in values):
                continue
            row = parse_row(number, header, values, jurisdiction)
            place = row.fields.get("jurisdiction_code")
            places.add(place)
            if row.status != "invalid" and not _in_scope(principal, place):
                row.status, row.message = "invalid", f"第{number}行：辖区不在您的管辖范围内"
            chunk.append(row)
            if len(chunk) >= CHUNK:
                await _settle(session, principal, chunk, report, record, pool)
                chunk = []
        if chunk:
            await _settle(session, principal, chunk, report, record, pool)
        if kind == "canvass":
            report.not_seen = await _not_seen(session, principal, places or {jurisdiction})
        if record is not None:
            record.counts = dict(report.counts)
        if request is not None:
            audit(session, principal, "child.import_dry_run" if dry_run else "child.import",
                  "ledger", report.import_id, request,
                  {"kind": kind, "counts": report.counts})
    return report


async def _settle(session, principal, chunk: list[Row], report: ImportReport, record,
                  pool: _Pool) -> None:
    await _judge(session, pool, chunk)
    plans = await _plan(session, chunk)  # listed by the dry run too
    if record is not None:
        touched = await _write(session, principal, chunk, report.kind, record.id, plans)
        await pool.refresh(session, touched)
        session.expunge_all()
        session.add(record)
    for row in chunk:
        report.add(row)


async def _not_seen(session, principal: Principal, places: set[str | None],
                    limit: int = 500) -> list[dict[str, Any]]:
    """Children of the round's places not seen (a visit, a canvassing round) within the
    configured period, for a visit."""
    days = settings().canvass.unseen_days
    since = datetime.now(UTC) - timedelta(days=days)
    stmt = select(Child.id, Child.name, Child.last_seen_at).where(
        Child.merged_into_id.is_(None), child_filter(principal),
        (Child.last_seen_at.is_(None)) | (Child.last_seen_at < since))
    codes = sorted(p for p in places if p)
    if not codes:
        return []
    stmt = stmt.where(Child.jurisdiction_code.in_(codes))
    rows = (await session.execute(stmt.order_by(Child.id).limit(limit))).all()
    return [{"child_id": i, "name": n, "last_seen_at": s.isoformat() if s else None}
            for i, n, s in rows]
