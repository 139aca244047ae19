"""Staff API of the child file and matching.

`GET /api/v1/cases/{id}/similar` (center only) per the contract; the child records behind
`/api/v1/children/...` (read: staff in scope, departments only their referrals' children;
write: the center), linking cases to children, merging two records, the file's timeline, its
export, and ledger imports. Every read and write is audited. Thin: the operations are
`dispatch.children.file_service`'s (the console pages run the same ones).
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel

from channels.web import sessions
from dispatch import xlsx
from dispatch.cases.access import load_case
from dispatch.children import file_service, ledger, matching_service
from dispatch.children.file_service import (
    CaseChildren,
    ChildEditIn,
    ChildOut,
    GuardianIn,
    LinkIn,
    MergeIn,
    ReasonIn,
    SiblingIn,
    TimelineList,
)
from dispatch.common.endpoints import Casework, CenterStaff, acting
from dispatch.common.views import from_row
from dispatch.staff.audit import audit
from dispatch.staff.auth import require

router = APIRouter(prefix="/api/v1", tags=["children"])
Staff = acting(require("operator", "caseworker", "supervisor", "liaison"))


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
    case_id: int, caller: CenterStaff, limit: Annotated[int, Query(ge=1, le=50)] = 10
) -> SimilarList:
    """Possible duplicates of a case from any channel, best first, only cases the caller
    may see; a score 0–1 and the reasons."""
    request, principal = caller.request, caller.principal
    async with sessions(request)() as session, session.begin():
        case = await load_case(session, principal, case_id)
        found = await matching_service.similar_cases(session, principal, case, limit=limit)
        audit(
            session,
            principal,
            "case.similar",
            "case",
            case_id,
            request,
            {"cases": [s.case_id for s in found]},
        )
    return SimilarList(items=[from_row(SimilarItem, s) for s in found])


@router.get("/children/{child_id}", response_model=ChildOut)
async def get_child(child_id: int, caller: Staff, reveal: bool = False) -> ChildOut:
    """One child's record; the ID number and guardians' phones masked unless the center
    reveals them (audited as its own read)."""
    return await caller.run(file_service.read_child, child_id=child_id, reveal=reveal)


@router.get("/children/{child_id}/timeline", response_model=TimelineList)
async def get_timeline(child_id: int, caller: Staff) -> TimelineList:
    return await caller.run(file_service.read_timeline, child_id=child_id)


@router.patch("/children/{child_id}", response_model=ChildOut)
async def edit_child(child_id: int, body: ChildEditIn, caller: CenterStaff) -> ChildOut:
    return await caller.run(file_service.edit_child, child_id=child_id, body=body)


@router.post("/children/{child_id}/guardians", response_model=ChildOut, status_code=201)
async def add_guardian(child_id: int, body: GuardianIn, caller: CenterStaff) -> ChildOut:
    return await caller.run(file_service.add_guardian, child_id=child_id, body=body)


@router.post("/children/{child_id}/siblings", response_model=ChildOut, status_code=201)
async def link_sibling(child_id: int, body: SiblingIn, caller: CenterStaff) -> ChildOut:
    """Record a brother or sister (both files show it, both timelines say who and why);
    already linked answers the file unchanged."""
    return await caller.run(file_service.link_sibling, child_id=child_id, body=body)


@router.post("/children/{child_id}/siblings/{sibling_id}/unlink", response_model=ChildOut)
async def unlink_sibling(
    child_id: int, sibling_id: int, body: ReasonIn, caller: CenterStaff
) -> ChildOut:
    """Take back a sibling link recorded by mistake, with a reason."""
    return await caller.run(
        file_service.unlink_sibling, child_id=child_id, sibling_id=sibling_id, body=body
    )


@router.post("/children/{child_id}/merge", response_model=ChildOut)
async def merge_child(child_id: int, body: MergeIn, caller: Casework) -> ChildOut:
    """Fold this record into another of the same child; its cases, guardians and siblings
    move there, it stays as history pointing at the one kept."""
    return await caller.run(file_service.merge_child, child_id=child_id, body=body)


@router.get(
    "/children/{child_id}/export",
    response_class=Response,
    responses={
        200: {
            "description": "XLSX 工作簿",
            "content": {xlsx.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def export_child(child_id: int, caller: CenterStaff) -> Response:
    """The whole file as an XLSX workbook (for a case conference); audited."""
    book = await caller.run(file_service.export_child, child_id=child_id)
    return xlsx.download(book.content, book.name)


@router.get("/cases/{case_id}/children", response_model=CaseChildren)
async def case_children(case_id: int, caller: CenterStaff) -> CaseChildren:
    """The records linked to a case, and the existing records it is probably about."""
    return await caller.run(file_service.case_children, case_id=case_id)


@router.post("/cases/{case_id}/children", status_code=201)
async def link_child(case_id: int, body: LinkIn, caller: CenterStaff) -> dict[str, Any]:
    """Link the case to an existing record, or (no child_id) open a record from its report."""
    return await caller.run(file_service.link_child, case_id=case_id, body=body)


@router.post("/cases/{case_id}/children/{child_id}/unlink")
async def unlink_child(
    case_id: int, child_id: int, body: ReasonIn, caller: CenterStaff
) -> dict[str, Any]:
    return await caller.run(
        file_service.unlink_child, case_id=case_id, child_id=child_id, body=body
    )


@router.post("/children/import")
async def import_ledger(
    caller: Casework,
    file: Annotated[UploadFile, File(description="台账（.xlsx 或 .csv）")],
    kind: Annotated[Literal["ledger", "canvass"], Form()] = "ledger",
    dry_run: Annotated[bool, Form()] = True,
) -> dict[str, Any]:
    """A district's ledger or a canvassing round: matched against existing children, a
    report of new / matched / conflicting rows; written only when dry_run is false."""
    content = await file.read()
    report = await ledger.import_file(
        sessions(caller.request),
        caller.principal,
        file.filename or "ledger",
        content,
        kind=kind,
        dry_run=dry_run,
        request=caller.request,
    )
    return report.as_dict()
