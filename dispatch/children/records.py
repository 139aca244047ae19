"""The child file (一人一档): one record per child, linked to every case about the child.

Staff create a record from a case's report, link a case to an existing record, unlink,
edit and merge two records of one child; every change is a `child_event` on the file's
timeline and an audit row. The file page shows one timeline: the record's own events and
every case event, report and visit of the cases linked to it that the viewer may see.
Scope: the center sees the children of its jurisdiction's subtree and of the cases it sees;
departments see only the children of their referrals' cases.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, delete, exists, false, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.crypto import blind_index
from db.models import Case, CaseEvent, Report, Visit
from db.models_children import CaseChild, Child, ChildEvent, ChildSibling, Guardian
from db.telephony import SmsThread
from dispatch.children.matching_service import (
    child_profile_of,
    guardian_phones_of_child,
    profile_of,
    rekey_children,
    similar_cases,
)
from dispatch.common.lookup import scalar_or_404
from dispatch.common.views import from_row
from dispatch.staff.auth import Principal
from dispatch.staff.scope import case_filter, in_subtree, is_root
from workflows.errors import Conflict, Forbidden, Invalid, NotFound
from workflows.matching import Match, score, thresholds
from workflows.matching.keys import query_keys
from workflows.matching.normalize import clean_name, pinyin
from workflows.phones import mask_id_number, mask_phone, normalize_phone
from workflows.places import root_jurisdiction
from workflows.reference import category_labels, jurisdiction_labels
from workflows.referrals.deadlines import levels

GUARDIAN_STATES = {
    "present": "在家监护",
    "away": "外出务工",
    "imprisoned": "服刑在押",
    "rehab": "强制隔离戒毒",
    "missing": "失踪",
    "deceased": "死亡",
    "ill": "重病重残",
}
# Fields staff may edit (PATCH /children/{id}, the file page's form, a ledger row).
EDITABLE = ("name", "gender", "birth_date", "age", "id_number", "hukou", "address",
            "jurisdiction_code", "school", "school_class", "categories", "risk_level")


def child_filter(principal: Principal) -> ColumnElement[bool]:
    """Default deny, as cases: the children of cases the principal may see; for the center
    also those registered in its jurisdiction's subtree (a ledger's children, no case yet)."""
    if not principal.scope_path:
        return false()
    linked = exists(
        select(CaseChild.case_id)
        .join(Case, Case.id == CaseChild.case_id)
        .where(CaseChild.child_id == Child.id, case_filter(principal))
    )
    if not principal.is_center:
        return linked
    own = in_subtree(Child.jurisdiction_code, principal.scope_path)
    if is_root(principal):
        own = or_(own, Child.jurisdiction_code.is_(None))
    return or_(own, linked)


async def load_child(
    session: AsyncSession, principal: Principal, child_id: int, *, lock: bool = False
) -> Child:
    stmt = select(Child).where(Child.id == child_id, child_filter(principal))
    stmt = stmt.with_for_update() if lock else stmt
    return await scalar_or_404(session, stmt, "child_not_found", "未找到该儿童档案")


def require_center(principal: Principal) -> None:
    if not principal.is_center:
        raise Forbidden("forbidden", "只有未保中心工作人员可以修改儿童档案")


def _event(session: AsyncSession, child_id: int, event: str, principal: Principal, *,
           case_id: int | None = None, reason: str | None = None,
           data: dict[str, Any] | None = None) -> None:
    session.add(ChildEvent(child_id=child_id, event=event, actor=principal.label,
                           actor_id=principal.id or None, case_id=case_id, reason=reason,
                           data=data))


def set_id_number(child: Child, value: str | None) -> None:
    """The number encrypted, its blind index for lookups (normalized: spaces, x/X)."""
    cleaned = "".join((value or "").split()).upper() or None
    child.id_number = cleaned
    child.id_index = blind_index("id", cleaned) if cleaned else None


def apply_fields(child: Child, fields: dict[str, Any]) -> list[str]:
    """Set the given fields; returns the names of those that changed."""
    changed = []
    for name, value in fields.items():
        if name not in EDITABLE:
            continue
        if name == "id_number":
            if (value or None) != child.id_number:
                set_id_number(child, value)
                changed.append(name)
            continue
        if getattr(child, name) != value:
            setattr(child, name, value)
            changed.append(name)
            if name == "age":
                child.age_given_on = date.today()
    return changed


async def rekey(session: AsyncSession, child: Child) -> None:
    """The record's keys after a change to it or its guardians (service.rekey_children:
    with its guardians' phones, always)."""
    await rekey_children(session, [child])


async def link(session: AsyncSession, principal: Principal, case_id: int, child_id: int,
               *, reason: str | None = None) -> bool:
    """Link a case to a child; False when it was linked already (nothing written)."""
    done = await session.execute(
        insert(CaseChild)
        .values(case_id=case_id, child_id=child_id, linked_by=principal.label)
        .on_conflict_do_nothing()
        .returning(CaseChild.case_id)
    )
    if done.first() is None:
        return False
    _event(session, child_id, "linked", principal, case_id=case_id, reason=reason)
    return True


async def unlink(session: AsyncSession, principal: Principal, case_id: int, child_id: int,
                 reason: str) -> None:
    gone = await session.execute(
        delete(CaseChild)
        .where(CaseChild.case_id == case_id, CaseChild.child_id == child_id)
        .returning(CaseChild.case_id)
    )
    if gone.first() is None:
        raise NotFound("link_not_found", "该案件未关联此儿童档案")
    _event(session, child_id, "unlinked", principal, case_id=case_id, reason=reason)


def child_from_report(report: Report, case: Case) -> Child:
    """A new record from what a report said about the child."""
    given = report.child or {}
    at = report.created_at or datetime.now(UTC)
    return Child(
        name=given.get("name") or None,
        gender=given.get("gender") if given.get("gender") in ("male", "female") else None,
        age=given.get("age"),
        age_given_on=at.date() if given.get("age") is not None else None,
        address=report.address or given.get("address"),
        jurisdiction_code=case.jurisdiction_code or report.jurisdiction_code,
        categories=list(case.categories or report.categories or []),
        risk_level=case.risk_level or case.predicted_risk,
    )


async def create_from_case(session: AsyncSession, principal: Principal, case: Case,
                           *, reason: str | None = None) -> Child:
    report = (
        await session.execute(
            select(Report).where(Report.case_id == case.id).order_by(Report.id).limit(1)
        )
    ).scalar_one()
    child = child_from_report(report, case)
    await rekey(session, child)  # no guardians yet: a new record has none
    session.add(child)
    await session.flush()
    _event(session, child.id, "created", principal, case_id=case.id, reason=reason,
           data={"from": "case"})
    await link(session, principal, case.id, child.id)
    return child


@dataclass(frozen=True)
class Candidate:
    child: Child
    match: Match


async def candidates_for_case(session: AsyncSession, principal: Principal, case: Case,
                              *, limit: int = 5) -> list[Candidate]:
    """Existing child records this case's reports are probably about (the proposal on the
    case page, and what intake decides on), best first, in the principal's scope."""
    mine = [profile_of(r) for r in (
        await session.execute(select(Report).where(Report.case_id == case.id))).scalars()]
    wanted = sorted({k for p in mine for k in query_keys(p) if not k.startswith("w:")})
    if not wanted:
        return []
    linked = select(CaseChild.child_id).where(CaseChild.case_id == case.id)
    rows = (
        await session.execute(
            select(Child, guardian_phones_of_child())
            .where(Child.match_keys.overlap(wanted), Child.merged_into_id.is_(None),
                   Child.id.not_in(linked), child_filter(principal))
            .order_by(Child.updated_at.desc())
            .limit(100)
        )
    ).all()
    floor = thresholds().suggest
    found = []
    for child, phones in rows:
        # With its guardians' phones: a report from one is the "same phone" (issue 12).
        theirs = child_profile_of(child, phones)
        best = max((score(p, theirs) for p in mine), key=lambda m: m.score)
        if best.score >= floor:
            found.append(Candidate(child, best))
    found.sort(key=lambda c: -c.match.score)
    return found[:limit]


async def merge(session: AsyncSession, principal: Principal, child_id: int, into_id: int,
                reason: str) -> Child:
    """Fold a duplicate record into the one kept: its cases, guardians and siblings move,
    the duplicate points at the one kept and stays as history."""
    if child_id == into_id:
        raise Invalid("same_child", "不能与自身合并")
    dup = await load_child(session, principal, child_id, lock=True)
    kept = await load_child(session, principal, into_id, lock=True)
    if dup.merged_into_id or kept.merged_into_id:
        raise Conflict("child_merged", "该档案已合并到其他档案")
    cases = [c for (c,) in await session.execute(
        select(CaseChild.case_id).where(CaseChild.child_id == dup.id))]
    for case_id in cases:
        await session.execute(
            insert(CaseChild).values(case_id=case_id, child_id=kept.id,
                                     linked_by=principal.label).on_conflict_do_nothing())
    await session.execute(delete(CaseChild).where(CaseChild.child_id == dup.id))
    await session.execute(
        update(Guardian).where(Guardian.child_id == dup.id).values(child_id=kept.id))
    for column, other in ((ChildSibling.child_id, ChildSibling.sibling_id),
                          (ChildSibling.sibling_id, ChildSibling.child_id)):
        rows = await session.execute(select(other).where(column == dup.id))
        for (sibling,) in rows.all():
            if sibling != kept.id:
                await add_sibling(session, kept.id, sibling)
        await session.execute(delete(ChildSibling).where(column == dup.id))
    for name in EDITABLE:  # what the kept record lacks, the duplicate fills in
        if name == "id_number":
            if not kept.id_number and dup.id_number:
                set_id_number(kept, dup.id_number)
        elif getattr(kept, name) in (None, [], "") and getattr(dup, name) not in (None, [], ""):
            setattr(kept, name, getattr(dup, name))
    dup.merged_into_id = kept.id
    dup.match_keys = []
    kept.updated_at = datetime.now(UTC)
    await rekey(session, kept)
    _event(session, dup.id, "merged", principal, reason=reason, data={"into": kept.id})
    _event(session, kept.id, "merged_in", principal, reason=reason,
           data={"from": dup.id, "cases": cases})
    return kept


async def add_sibling(session: AsyncSession, a: int, b: int) -> bool:
    """One row per pair (the lower id first); returns whether it is new."""
    low, high = sorted((a, b))
    made = await session.execute(
        insert(ChildSibling).values(child_id=low, sibling_id=high).on_conflict_do_nothing()
        .returning(ChildSibling.child_id))
    return made.first() is not None


async def _pair(session: AsyncSession, principal: Principal, child: Child,
                other_id: int) -> Child:
    require_center(principal)
    if other_id == child.id:
        raise Invalid("same_child", "不能把儿童记为自己的兄弟姐妹")
    other = await load_child(session, principal, other_id, lock=True)
    if child.merged_into_id or other.merged_into_id:
        raise Conflict("child_merged", "已并档的记录不能登记兄弟姐妹，请在保留的档案上操作")
    return other


async def link_sibling(session: AsyncSession, principal: Principal, child: Child,
                       other_id: int, reason: str) -> bool:
    """Record two children as siblings, on both files' timelines; False if they already
    were (nothing written)."""
    other = await _pair(session, principal, child, other_id)
    if not await add_sibling(session, child.id, other.id):
        return False
    for one, two in ((child, other), (other, child)):
        _event(session, one.id, "sibling_linked", principal, reason=reason,
               data={"sibling": two.id})
    return True


async def unlink_sibling(session: AsyncSession, principal: Principal, child: Child,
                         other_id: int, reason: str) -> None:
    """Take back a sibling link recorded by mistake; 404 if there was none."""
    other = await _pair(session, principal, child, other_id)
    low, high = sorted((child.id, other.id))
    gone = await session.execute(
        delete(ChildSibling).where(ChildSibling.child_id == low, ChildSibling.sibling_id == high)
        .returning(ChildSibling.child_id))
    if gone.first() is None:
        raise NotFound("sibling_not_found", "这两名儿童没有登记为兄弟姐妹")
    for one, two in ((child, other), (other, child)):
        _event(session, one.id, "sibling_unlinked", principal, reason=reason,
               data={"sibling": two.id})


async def follow_case_merge(session: AsyncSession, case_id: int, into_id: int,
                            actor: str) -> None:
    """A case merged into another: its children and SMS threads go with it, so the file
    shows the kept case and a texter's next message threads into the kept case."""
    children = [c for (c,) in await session.execute(
        select(CaseChild.child_id).where(CaseChild.case_id == case_id))]
    for child_id in children:
        await session.execute(
            insert(CaseChild).values(case_id=into_id, child_id=child_id, linked_by=actor)
            .on_conflict_do_nothing())
    await session.execute(
        update(SmsThread).where(SmsThread.case_id == case_id).values(case_id=into_id))


# ---- the file as it is shown --------------------------------------------------------------


# The same models answer the API (`dispatch.children.file_service`), fill the console's page
# and the XLSX export.
class GuardianOut(BaseModel):
    id: int
    relation: str
    name: str | None
    phone: str | None  # masked unless revealed
    state: str
    state_label: str


class CaseLinkOut(BaseModel):
    case_id: int
    state: str
    created_at: datetime
    risk_level: str | None
    categories: list[str]
    jurisdiction: str | None


class ChildOut(BaseModel):
    id: int
    name: str | None
    name_pinyin: str | None  # worked out from the name: never stored (a dump would read it)
    gender: str | None
    birth_date: date | None
    age: int | None  # today
    # Masked (first six and last four) unless the center asked to reveal it (audited).
    id_number: str | None
    hukou: str | None
    address: str | None
    jurisdiction: str | None
    school: str | None
    school_class: str | None
    categories: list[str]
    risk_level: str | None
    merged_into_id: int | None
    last_seen_at: datetime | None
    guardians: list[GuardianOut]
    siblings: list[dict[str, Any]]
    cases: list[CaseLinkOut]


# One line of the file's timeline, as built here and as the API returns it (a docstring
# would become the schema's description).
@dataclass
class TimelineOut:
    at: datetime
    kind: str  # child, case, report, visit
    case_id: int | None
    event: str
    actor: str | None
    text: str | None
    data: dict[str, Any] | None


async def child_file(session: AsyncSession, principal: Principal, child: Child, *,
                     reveal: bool = False) -> ChildOut:
    guardians = (await session.execute(
        select(Guardian).where(Guardian.child_id == child.id).order_by(Guardian.id))).scalars()
    sibling_ids = [
        b if a == child.id else a
        for a, b in (await session.execute(
            select(ChildSibling.child_id, ChildSibling.sibling_id).where(
                or_(ChildSibling.child_id == child.id, ChildSibling.sibling_id == child.id))))
    ]
    siblings = (await session.execute(
        select(Child.id, Child.name).where(Child.id.in_(sibling_ids), child_filter(principal))
    )).all() if sibling_ids else []
    cases = (await session.execute(
        select(Case).join(CaseChild, CaseChild.case_id == Case.id)
        .where(CaseChild.child_id == child.id, case_filter(principal))
        .order_by(Case.created_at.desc()))).scalars()
    show_full = reveal and principal.is_center
    return from_row(
        ChildOut, child, name_pinyin=pinyin(child.name) or None, age=child_profile_of(child).age,
        id_number=child.id_number if show_full else mask_id_number(child.id_number),
        jurisdiction=child.jurisdiction_code, categories=list(child.categories or []),
        guardians=[
            from_row(GuardianOut, g, phone=g.phone if show_full else mask_phone(g.phone),
                     state_label=GUARDIAN_STATES.get(g.state, g.state))
            for g in guardians
        ],
        siblings=[{"id": i, "name": n} for i, n in siblings],
        cases=[from_row(CaseLinkOut, c, case_id=c.id, categories=list(c.categories),
                        jurisdiction=c.jurisdiction_code) for c in cases],
    )


async def timeline(session: AsyncSession, principal: Principal, child: Child,
                   case_ids: list[int]) -> list[TimelineOut]:
    """Everything about the child, newest first: the file's own events, and the events,
    reports (any channel) and visits of the linked cases the principal may see. A file
    event about a case (opened from it, linked, unlinked) only where that case is in scope
    too: the file of a child known to two districts told each the other's case number and
    its staff's reasons."""
    own_events = select(ChildEvent).where(
        ChildEvent.child_id == child.id,
        or_(ChildEvent.case_id.is_(None),
            ChildEvent.case_id.in_(select(Case.id).where(case_filter(principal)))),
    )
    items = [
        TimelineOut(e.created_at, "child", e.case_id, e.event, e.actor, e.reason, e.data)
        for e in (await session.execute(own_events)).scalars()
    ]
    if case_ids:
        for e in (await session.execute(
                select(CaseEvent).where(CaseEvent.case_id.in_(case_ids)))).scalars():
            # Child details corrected on a case show as field names only (as on the case).
            items.append(TimelineOut(e.created_at, "case", e.case_id, e.event, e.actor,
                                      e.reason, {"from": e.from_state, "to": e.to_state}))
        for r in (await session.execute(
                select(Report.id, Report.case_id, Report.channel, Report.created_at,
                       Report.description).where(Report.case_id.in_(case_ids)))).all():
            items.append(TimelineOut(r.created_at, "report", r.case_id, r.channel, None,
                                      r.description[:200], {"report_id": r.id}))
        for v in (await session.execute(
                select(Visit).where(Visit.case_id.in_(case_ids),
                                    Visit.visited_at.is_not(None)))).scalars():
            items.append(TimelineOut(v.visited_at, "visit", v.case_id, "visit", None,
                                      v.findings, {"risk_after": v.risk_after}))
    items.sort(key=lambda i: i.at, reverse=True)
    return items


def checked_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields with codes that exist (else a clear error saying which are allowed), and
    a cleared field as the record keeps it: no categories is an empty list, an empty
    jurisdiction none."""
    fields = dict(fields)
    if "categories" in fields and fields["categories"] is None:
        fields["categories"] = []
    if "jurisdiction_code" in fields and not fields["jurisdiction_code"]:
        fields["jurisdiction_code"] = None
    known = category_labels()
    if any(c not in known for c in fields.get("categories") or []):
        allowed = "、".join(f"{k}（{v}）" for k, v in known.items())
        raise Invalid("unknown_category", f"困境类型代码无效，可选：{allowed}")
    code = fields.get("jurisdiction_code")
    if code and code not in jurisdiction_labels():
        raise Invalid("unknown_jurisdiction", "辖区代码无效，请从辖区列表中选择")
    level = fields.get("risk_level")
    if level and level not in levels():
        raise Invalid("unknown_risk_level", f"风险等级无效，可选：{'、'.join(levels())}")
    return fields


async def edit(session: AsyncSession, principal: Principal, child: Child,
               fields: dict[str, Any], reason: str) -> list[str]:
    require_center(principal)
    changed = apply_fields(child, fields)
    if changed:
        child.updated_at = datetime.now(UTC)
        await rekey(session, child)
        # Field names only: the timeline is shown more widely than the values.
        _event(session, child.id, "edited", principal, reason=reason, data={"fields": changed})
    return changed


async def add_guardian(session: AsyncSession, principal: Principal, child: Child,
                       given: dict[str, Any]) -> Guardian:
    require_center(principal)
    phone = normalize_phone(given["phone"]) if given.get("phone") else None
    if given.get("phone") and phone is None:
        raise Invalid("invalid_phone", "请填写有效的手机号或固定电话")
    guardian = Guardian(child_id=child.id, relation=given["relation"], name=given.get("name"),
                        phone=phone, phone_index=blind_index("phone", phone) if phone else None,
                        state=given.get("state") or "present")
    session.add(guardian)
    await session.flush()
    await rekey(session, child)
    _event(session, child.id, "guardian_added", principal,
           data={"relation": guardian.relation, "state": guardian.state})
    return guardian


async def linked_children(session: AsyncSession, principal: Principal,
                          case_id: int) -> list[Child]:
    return list((await session.execute(
        select(Child).join(CaseChild, CaseChild.child_id == Child.id)
        .where(CaseChild.case_id == case_id, child_filter(principal))
        .order_by(Child.id))).scalars())


@dataclass(frozen=True)
class SystemPrincipal(Principal):
    """The service itself, acting with the city center's scope (intake's matching)."""

    @property
    def label(self) -> str:
        return f"system:{self.username}"


def system_principal(name: str = "matching") -> SystemPrincipal:
    root = root_jurisdiction()
    return SystemPrincipal(id=0, username=name, role="caseworker", department=None,
                           jurisdiction=root, scope_path=f"{root}/" if root else None)


async def on_intake(session: AsyncSession, case: Case, reports: list[Report]) -> None:
    """After intake: mark a very likely duplicate (the operators' incoming list shows it),
    and open a file for a named child no existing record resembles; when one does, the
    case page proposes it and staff decide. `reports` are the case's, as the job loaded
    them (not read again here)."""
    principal = system_principal()
    found = await similar_cases(session, principal, case, limit=1,
                                minimum=thresholds().very_likely, reports=reports)
    case.likely_duplicate_of = found[0].case_id if found else None
    case.likely_duplicate_score = found[0].score if found else None
    if await session.scalar(select(CaseChild.child_id).where(CaseChild.case_id == case.id)):
        return
    first = min(reports, key=lambda r: r.id).child if reports else None
    if not clean_name((first or {}).get("name")):
        return
    if await candidates_for_case(session, principal, case, limit=1):
        return
    await create_from_case(session, principal, case, reason="受理时自动建档")
