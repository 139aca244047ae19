"""Staff API of the child file and matching.

`GET /api/v1/cases/{id}/similar` (center only) per the contract; the child records behind
`/api/v1/children/...` (read: staff in scope, departments only their referrals' children;
write: the center), linking cases to children, merging two records, the file's timeline, its
export, and ledger imports. Every read and write is audited.
"""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from channels.errors import ApiError
from channels.web import sessions
from dispatch.cases.access import load_case
from dispatch.children import export, ledger, records, service
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal, require, require_center

router = APIRouter(prefix="/api/v1", tags=["children"])
CENTER = require_center("operator", "caseworker", "supervisor")
STAFF = require("operator", "caseworker", "supervisor", "liaison")
CASEWORK = require_center("caseworker", "supervisor")
Text100 = Annotated[str | None, Field(default=None, max_length=100)]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]


class SimilarItem(BaseModel):
    case_id: int
    score: float
    # Short Chinese labels of the signals behind the score (姓名同音, 地址相近, 同一电话…).
    reasons: list[str]
    state: str
    jurisdiction: str | None


class SimilarList(BaseModel):
    items: list[SimilarItem]


@router.get("/cases/{case_id}/similar", response_model=SimilarList)
async def similar(
    request: Request,
    case_id: int,
    principal: Annotated[Principal, Depends(CENTER)],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> SimilarList:
    """Possible duplicates of a case from any channel, best first, only cases the caller
    may see; a score 0–1 and the reasons."""
    async with sessions(request)() as session, session.begin():
        case = await load_case(session, principal, case_id)
        found = await service.similar_cases(session, principal, case, limit=limit)
        audit(
            session, principal, "case.similar", "case", case_id, request,
            {"cases": [s.case_id for s in found]},
        )
    return SimilarList(
        items=[
            SimilarItem(
                case_id=s.case_id,
                score=s.score,
                reasons=s.reasons,
                state=s.state,
                jurisdiction=s.jurisdiction,
            )
            for s in found
        ]
    )


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
    name_pinyin: str | None
    gender: str | None
    birth_date: date | None
    age: int | None
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


class TimelineOut(BaseModel):
    at: datetime
    kind: str  # child, case, report, visit
    case_id: int | None
    event: str
    actor: str | None
    text: str | None
    data: dict[str, Any] | None


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


def _child_out(view: records.ChildFile) -> ChildOut:
    return ChildOut.model_validate(view, from_attributes=True)


@router.get("/children/{child_id}", response_model=ChildOut)
async def get_child(
    request: Request,
    child_id: int,
    principal: Annotated[Principal, Depends(STAFF)],
    reveal: bool = False,
) -> ChildOut:
    """One child's record; the ID number and guardians' phones masked unless the center
    reveals them (audited as its own read)."""
    async with sessions(request)() as session, session.begin():
        child = await records.load_child(session, principal, child_id)
        view = await records.child_file(session, principal, child, reveal=reveal)
        audit(session, principal, "child.reveal" if reveal and principal.is_center
              else "child.read", "child", child_id, request)
    return _child_out(view)


@router.get("/children/{child_id}/timeline", response_model=TimelineList)
async def get_timeline(
    request: Request, child_id: int, principal: Annotated[Principal, Depends(STAFF)]
) -> TimelineList:
    async with sessions(request)() as session, session.begin():
        child = await records.load_child(session, principal, child_id)
        view = await records.child_file(session, principal, child)
        items = await records.timeline(session, principal, child, [c.case_id for c in view.cases])
        audit(session, principal, "child.timeline", "child", child_id, request)
    return TimelineList(items=[TimelineOut.model_validate(i, from_attributes=True) for i in items])


@router.patch("/children/{child_id}", response_model=ChildOut)
async def edit_child(
    request: Request,
    child_id: int,
    body: ChildEditIn,
    principal: Annotated[Principal, Depends(CENTER)],
) -> ChildOut:
    fields = body.model_dump(exclude_unset=True, exclude={"reason"})
    if "jurisdiction" in fields:
        fields["jurisdiction_code"] = fields.pop("jurisdiction")
    fields = records.checked_fields(fields)
    async with sessions(request)() as session, session.begin():
        child = await records.load_child(session, principal, child_id, lock=True)
        changed = await records.edit(session, principal, child, fields, body.reason)
        audit(session, principal, "child.edit", "child", child_id, request, {"fields": changed})
        view = await records.child_file(session, principal, child)
    return _child_out(view)


@router.post("/children/{child_id}/guardians", response_model=ChildOut, status_code=201)
async def add_guardian(
    request: Request,
    child_id: int,
    body: GuardianIn,
    principal: Annotated[Principal, Depends(CENTER)],
) -> ChildOut:
    async with sessions(request)() as session, session.begin():
        child = await records.load_child(session, principal, child_id, lock=True)
        await records.add_guardian(session, principal, child, body.model_dump())
        audit(session, principal, "child.guardian_add", "child", child_id, request)
        view = await records.child_file(session, principal, child)
    return _child_out(view)


@router.post("/children/{child_id}/siblings", response_model=ChildOut, status_code=201)
async def link_sibling(
    request: Request,
    child_id: int,
    body: SiblingIn,
    principal: Annotated[Principal, Depends(CENTER)],
) -> ChildOut:
    """Record a brother or sister (both files show it, both timelines say who and why);
    already linked answers the file unchanged."""
    async with sessions(request)() as session, session.begin():
        child = await records.load_child(session, principal, child_id, lock=True)
        if await records.link_sibling(session, principal, child, body.sibling_id, body.reason):
            audit(session, principal, "child.sibling_link", "child", child_id, request,
                  {"sibling": body.sibling_id})
        view = await records.child_file(session, principal, child)
    return _child_out(view)


@router.post("/children/{child_id}/siblings/{sibling_id}/unlink", response_model=ChildOut)
async def unlink_sibling(
    request: Request,
    child_id: int,
    sibling_id: int,
    body: ReasonIn,
    principal: Annotated[Principal, Depends(CENTER)],
) -> ChildOut:
    """Take back a sibling link recorded by mistake, with a reason."""
    async with sessions(request)() as session, session.begin():
        child = await records.load_child(session, principal, child_id, lock=True)
        await records.unlink_sibling(session, principal, child, sibling_id, body.reason)
        audit(session, principal, "child.sibling_unlink", "child", child_id, request,
              {"sibling": sibling_id})
        view = await records.child_file(session, principal, child)
    return _child_out(view)


@router.post("/children/{child_id}/merge", response_model=ChildOut)
async def merge_child(
    request: Request,
    child_id: int,
    body: MergeIn,
    principal: Annotated[Principal, Depends(CASEWORK)],
) -> ChildOut:
    """Fold this record into another of the same child; its cases, guardians and siblings
    move there, it stays as history pointing at the one kept."""
    async with sessions(request)() as session, session.begin():
        kept = await records.merge(session, principal, child_id, body.into_child_id, body.reason)
        audit(session, principal, "child.merge", "child", child_id, request,
              {"into": kept.id})
        view = await records.child_file(session, principal, kept)
    return _child_out(view)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get(
    "/children/{child_id}/export",
    response_class=Response,
    responses={
        200: {
            "description": "XLSX 工作簿",
            "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def export_child(
    request: Request, child_id: int, principal: Annotated[Principal, Depends(CENTER)]
) -> Response:
    """The whole file as an XLSX workbook (for a case conference); audited."""
    async with sessions(request)() as session, session.begin():
        child = await records.load_child(session, principal, child_id)
        view = await records.child_file(session, principal, child)
        items = await records.timeline(session, principal, child, [c.case_id for c in view.cases])
        audit(session, principal, "child.export", "child", child_id, request)
    return Response(
        export.workbook(view, items),
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="child-{child_id}.xlsx"'},
    )


@router.get("/cases/{case_id}/children", response_model=CaseChildren)
async def case_children(
    request: Request, case_id: int, principal: Annotated[Principal, Depends(CENTER)]
) -> CaseChildren:
    """The records linked to a case, and the existing records it is probably about."""
    async with sessions(request)() as session, session.begin():
        case = await load_case(session, principal, case_id)
        linked = await records.linked_children(session, principal, case_id)
        found = await records.candidates_for_case(session, principal, case)
        audit(session, principal, "case.children", "case", case_id, request)
    return CaseChildren(
        items=[{"child_id": c.id, "name": c.name} for c in linked],
        candidates=[
            CandidateOut(child_id=c.child.id, name=c.child.name, score=c.match.score,
                         reasons=list(c.match.reasons))
            for c in found
        ],
    )


@router.post("/cases/{case_id}/children", status_code=201)
async def link_child(
    request: Request, case_id: int, body: LinkIn, principal: Annotated[Principal, Depends(CENTER)]
) -> dict[str, Any]:
    """Link the case to an existing record, or (no child_id) open a record from its report."""
    async with sessions(request)() as session, session.begin():
        case = await load_case(session, principal, case_id)
        if body.child_id is None:
            child = await records.create_from_case(session, principal, case, reason=body.reason)
            created = True
        else:
            child = await records.load_child(session, principal, body.child_id)
            if child.merged_into_id:
                raise ApiError(409, "child_merged",
                               f"该档案已合并到档案 #{child.merged_into_id}，请关联该档案")
            if not await records.link(session, principal, case.id, child.id, reason=body.reason):
                raise ApiError(409, "already_linked", "该案件已关联此儿童档案")
            created = False
        audit(session, principal, "case.link_child", "case", case_id, request,
              {"child_id": child.id, "created": created})
    return {"case_id": case_id, "child_id": child.id, "created": created}


@router.post("/cases/{case_id}/children/{child_id}/unlink")
async def unlink_child(
    request: Request,
    case_id: int,
    child_id: int,
    body: ReasonIn,
    principal: Annotated[Principal, Depends(CENTER)],
) -> dict[str, Any]:
    async with sessions(request)() as session, session.begin():
        await load_case(session, principal, case_id)
        await records.load_child(session, principal, child_id)
        await records.unlink(session, principal, case_id, child_id, body.reason)
        audit(session, principal, "case.unlink_child", "case", case_id, request,
              {"child_id": child_id})
    return {"case_id": case_id, "child_id": child_id, "linked": False}


@router.post("/children/import")
async def import_ledger(
    request: Request,
    principal: Annotated[Principal, Depends(CASEWORK)],
    file: Annotated[UploadFile, File(description="台账（.xlsx 或 .csv）")],
    kind: Annotated[Literal["ledger", "canvass"], Form()] = "ledger",
    dry_run: Annotated[bool, Form()] = True,
) -> dict[str, Any]:
    """A district's ledger or a canvassing round: matched against existing children, a
    report of new / matched / conflicting rows; written only when dry_run is false."""
    content = await file.read()
    report = await ledger.import_file(
        sessions(request), principal, file.filename or "ledger", content, kind=kind,
        dry_run=dry_run, request=request,
    )
    return report.as_dict()
