"""The child file's operations, for the JSON API and the console pages alike: reading a
record (masked unless the center reveals it) and its timeline, editing it, guardians,
siblings, merging two records, linking cases, the export.

Each takes the session and the client's address keyword-only (`channels.web.in_transaction`
passes them), loads the record in the caller's scope (404 outside it), audits, and returns a
typed result, so a page sees and writes exactly what the API would for this person.
"""

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.cases.access import load_case
from dispatch.children import export, records
from dispatch.children.records import ChildOut, TimelineOut
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal
from workflows.errors import Conflict

Text100 = Annotated[str | None, Field(default=None, max_length=100)]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]


class TimelineList(BaseModel):
    items: list[TimelineOut]


class ChildEditIn(BaseModel):
    """Any of the record's fields, and why."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Text100 = None
    gender: Literal["male", "female"] | None = None
    birth_date: date | None = None
    age: Annotated[int | None, Field(default=None, ge=0, le=17)] = None
    id_number: Annotated[str | None, Field(default=None, min_length=15, max_length=18)] = None
    hukou: Annotated[str | None, Field(default=None, max_length=200)] = None
    address: Annotated[str | None, Field(default=None, max_length=200)] = None
    jurisdiction: Annotated[str | None, Field(default=None, max_length=32)] = None
    school: Text100 = None
    school_class: Annotated[str | None, Field(default=None, max_length=50)] = None
    categories: Annotated[list[str] | None, Field(default=None, max_length=13)] = None
    risk_level: Annotated[str | None, Field(default=None, max_length=10)] = None
    reason: Reason


class GuardianIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    relation: Annotated[str, Field(min_length=1, max_length=20)]
    name: Text100 = None
    phone: Annotated[str | None, Field(default=None, max_length=32)] = None
    state: Literal["present", "away", "imprisoned", "rehab", "missing", "deceased", "ill"] = (
        "present"
    )


class LinkIn(BaseModel):
    """An existing record to link, or none: a new record from the case's first report."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    child_id: int | None = None
    reason: Annotated[str | None, Field(default=None, max_length=2000)] = None


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: Reason


class SiblingIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    sibling_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    reason: Reason


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    into_child_id: int
    reason: Reason


class CandidateOut(BaseModel):
    child_id: int
    name: str | None
    score: float
    reasons: list[str]


class CaseChildren(BaseModel):
    items: list[dict[str, Any]]  # {"child_id", "name"}
    candidates: list[CandidateOut]





async def read_child(
    *, session: AsyncSession, principal: Principal, ip: str | None, child_id: int,
    reveal: bool = False,
) -> ChildOut:
    """One child's record; the ID number and guardians' phones masked unless the center
    reveals them (audited as its own read)."""
    child = await records.load_child(session, principal, child_id)
    view = await records.child_file(session, principal, child, reveal=reveal)
    audit(session, principal, "child.reveal" if reveal and principal.is_center
          else "child.read", "child", child_id, ip=ip)
    return view


async def _with_timeline(
    session: AsyncSession, principal: Principal, child_id: int
) -> tuple[ChildOut, list[TimelineOut]]:
    """The file as this person may see it, and one timeline of it and its cases."""
    child = await records.load_child(session, principal, child_id)
    view = await records.child_file(session, principal, child)
    items = await records.timeline(session, principal, child, [c.case_id for c in view.cases])
    return view, items


async def read_timeline(
    *, session: AsyncSession, principal: Principal, ip: str | None, child_id: int
) -> TimelineList:
    _, items = await _with_timeline(session, principal, child_id)
    audit(session, principal, "child.timeline", "child", child_id, ip=ip)
    return TimelineList(items=items)


async def edit_child(
    *, session: AsyncSession, principal: Principal, ip: str | None, child_id: int,
    body: ChildEditIn,
) -> ChildOut:
    fields = body.model_dump(exclude_unset=True, exclude={"reason"})
    if "jurisdiction" in fields:
        fields["jurisdiction_code"] = fields.pop("jurisdiction")
    fields = records.checked_fields(fields)
    child = await records.load_child(session, principal, child_id, lock=True)
    changed = await records.edit(session, principal, child, fields, body.reason)
    audit(session, principal, "child.edit", "child", child_id, detail={"fields": changed}, ip=ip)
    return await records.child_file(session, principal, child)


async def add_guardian(
    *, session: AsyncSession, principal: Principal, ip: str | None, child_id: int,
    body: GuardianIn,
) -> ChildOut:
    child = await records.load_child(session, principal, child_id, lock=True)
    await records.add_guardian(session, principal, child, body.model_dump())
    audit(session, principal, "child.guardian_add", "child", child_id, ip=ip)
    return await records.child_file(session, principal, child)


async def link_sibling(
    *, session: AsyncSession, principal: Principal, ip: str | None, child_id: int,
    body: SiblingIn,
) -> ChildOut:
    """Record a brother or sister (both files show it, both timelines say who and why);
    already linked answers the file unchanged."""
    child = await records.load_child(session, principal, child_id, lock=True)
    if await records.link_sibling(session, principal, child, body.sibling_id, body.reason):
        audit(session, principal, "child.sibling_link", "child", child_id,
              detail={"sibling": body.sibling_id}, ip=ip)
    return await records.child_file(session, principal, child)


async def unlink_sibling(
    *, session: AsyncSession, principal: Principal, ip: str | None, child_id: int,
    sibling_id: int, body: ReasonIn,
) -> ChildOut:
    """Take back a sibling link recorded by mistake, with a reason."""
    child = await records.load_child(session, principal, child_id, lock=True)
    await records.unlink_sibling(session, principal, child, sibling_id, body.reason)
    audit(session, principal, "child.sibling_unlink", "child", child_id,
          detail={"sibling": sibling_id}, ip=ip)
    return await records.child_file(session, principal, child)


async def merge_child(
    *, session: AsyncSession, principal: Principal, ip: str | None, child_id: int,
    body: MergeIn,
) -> ChildOut:
    """Fold this record into another of the same child; its cases, guardians and siblings
    move there, it stays as history pointing at the one kept."""
    kept = await records.merge(session, principal, child_id, body.into_child_id, body.reason)
    audit(session, principal, "child.merge", "child", child_id, detail={"into": kept.id}, ip=ip)
    return await records.child_file(session, principal, kept)


@dataclass(frozen=True)
class Workbook:
    name: str
    content: bytes


async def export_child(
    *, session: AsyncSession, principal: Principal, ip: str | None, child_id: int
) -> Workbook:
    """The whole file as an XLSX workbook (for a case conference); audited."""
    view, items = await _with_timeline(session, principal, child_id)
    audit(session, principal, "child.export", "child", child_id, ip=ip)
    return Workbook(f"child-{child_id}.xlsx", export.workbook(view, items))


async def case_children(
    *, session: AsyncSession, principal: Principal, ip: str | None, case_id: int
) -> CaseChildren:
    """The records linked to a case, and the existing records it is probably about."""
    case = await load_case(session, principal, case_id)
    linked = await records.linked_children(session, principal, case_id)
    found = await records.candidates_for_case(session, principal, case)
    audit(session, principal, "case.children", "case", case_id, ip=ip)
    return CaseChildren(
        items=[{"child_id": c.id, "name": c.name} for c in linked],
        candidates=[
            CandidateOut(child_id=c.child.id, name=c.child.name, score=c.match.score,
                         reasons=list(c.match.reasons))
            for c in found
        ],
    )


async def link_child(
    *, session: AsyncSession, principal: Principal, ip: str | None, case_id: int, body: LinkIn
) -> dict[str, Any]:
    """Link the case to an existing record, or (no child_id) open a record from its report."""
    case = await load_case(session, principal, case_id)
    if body.child_id is None:
        child = await records.create_from_case(session, principal, case, reason=body.reason)
        created = True
    else:
        child = await records.load_child(session, principal, body.child_id)
        if child.merged_into_id:
            raise Conflict("child_merged",
                           f"该档案已合并到档案 #{child.merged_into_id}，请关联该档案")
        if not await records.link(session, principal, case.id, child.id, reason=body.reason):
            raise Conflict("already_linked", "该案件已关联此儿童档案")
        created = False
    audit(session, principal, "case.link_child", "case", case_id,
          detail={"child_id": child.id, "created": created}, ip=ip)
    return {"case_id": case_id, "child_id": child.id, "created": created}


async def unlink_child(
    *, session: AsyncSession, principal: Principal, ip: str | None, case_id: int,
    child_id: int, body: ReasonIn,
) -> dict[str, Any]:
    await load_case(session, principal, case_id)
    await records.load_child(session, principal, child_id)
    await records.unlink(session, principal, case_id, child_id, body.reason)
    audit(session, principal, "case.unlink_child", "case", case_id,
          detail={"child_id": child_id}, ip=ip)
    return {"case_id": case_id, "child_id": child_id, "linked": False}
