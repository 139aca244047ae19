"""Staff API of the child file and matching.

`GET /api/v1/cases/{id}/similar` (center only) per the contract; the child records behind
`/api/v1/children/...` (read: staff in scope, departments only their referrals' children;
write: the center), linking cases to children, merging two records, the file's timeline, its
export, and ledger imports. Every read and write is audited. Thin: the operations are
`dispatch.children.file_service`'s (the console pages run the same ones).
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel

from channels.web import in_transaction, sessions
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
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal, require, require_center

router = APIRouter(prefix="/api/v1", tags=["children"])
CENTER = require_center("operator", "caseworker", "supervisor")
STAFF = require("operator", "caseworker", "supervisor", "liaison")
CASEWORK = require_center("caseworker", "supervisor")


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
        found = await matching_service.similar_cases(session, principal, case, limit=limit)
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


@router.get("/children/{child_id}", response_model=ChildOut)
async def get_child(
    request: Request,
    child_id: int,
    principal: Annotated[Principal, Depends(STAFF)],
    reveal: bool = False,
) -> ChildOut:
    """One child's record; the ID number and guardians' phones masked unless the center
    reveals them (audited as its own read)."""
    return await in_transaction(
        request, file_service.read_child, principal=principal, child_id=child_id, reveal=reveal
    )


@router.get("/children/{child_id}/timeline", response_model=TimelineList)
async def get_timeline(
    request: Request, child_id: int, principal: Annotated[Principal, Depends(STAFF)]
) -> TimelineList:
    return await in_transaction(
        request, file_service.read_timeline, principal=principal, child_id=child_id
    )


@router.patch("/children/{child_id}", response_model=ChildOut)
async def edit_child(
    request: Request,
    child_id: int,
    body: ChildEditIn,
    principal: Annotated[Principal, Depends(CENTER)],
) -> ChildOut:
    return await in_transaction(
        request, file_service.edit_child, principal=principal, child_id=child_id, body=body
    )


@router.post("/children/{child_id}/guardians", response_model=ChildOut, status_code=201)
async def add_guardian(
    request: Request,
    child_id: int,
    body: GuardianIn,
    principal: Annotated[Principal, Depends(CENTER)],
) -> ChildOut:
    return await in_transaction(
        request, file_service.add_guardian, principal=principal, child_id=child_id, body=body
    )


@router.post("/children/{child_id}/siblings", response_model=ChildOut, status_code=201)
async def link_sibling(
    request: Request,
    child_id: int,
    body: SiblingIn,
    principal: Annotated[Principal, Depends(CENTER)],
) -> ChildOut:
    """Record a brother or sister (both files show it, both timelines say who and why);
    already linked answers the file unchanged."""
    return await in_transaction(
        request, file_service.link_sibling, principal=principal, child_id=child_id, body=body
    )


@router.post("/children/{child_id}/siblings/{sibling_id}/unlink", response_model=ChildOut)
async def unlink_sibling(
    request: Request,
    child_id: int,
    sibling_id: int,
    body: ReasonIn,
    principal: Annotated[Principal, Depends(CENTER)],
) -> ChildOut:
    """Take back a sibling link recorded by mistake, with a reason."""
    return await in_transaction(
        request, file_service.unlink_sibling, principal=principal, child_id=child_id,
        sibling_id=sibling_id, body=body,
    )


@router.post("/children/{child_id}/merge", response_model=ChildOut)
async def merge_child(
    request: Request,
    child_id: int,
    body: MergeIn,
    principal: Annotated[Principal, Depends(CASEWORK)],
) -> ChildOut:
    """Fold this record into another of the same child; its cases, guardians and siblings
    move there, it stays as history pointing at the one kept."""
    return await in_transaction(
        request, file_service.merge_child, principal=principal, child_id=child_id, body=body
    )


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
async def export_child(
    request: Request, child_id: int, principal: Annotated[Principal, Depends(CENTER)]
) -> Response:
    """The whole file as an XLSX workbook (for a case conference); audited."""
    book = await in_transaction(
        request, file_service.export_child, principal=principal, child_id=child_id
    )
    return xlsx.download(book.content, book.name)


@router.get("/cases/{case_id}/children", response_model=CaseChildren)
async def case_children(
    request: Request, case_id: int, principal: Annotated[Principal, Depends(CENTER)]
) -> CaseChildren:
    """The records linked to a case, and the existing records it is probably about."""
    return await in_transaction(
        request, file_service.case_children, principal=principal, case_id=case_id
    )


@router.post("/cases/{case_id}/children", status_code=201)
async def link_child(
    request: Request, case_id: int, body: LinkIn, principal: Annotated[Principal, Depends(CENTER)]
) -> dict[str, Any]:
    """Link the case to an existing record, or (no child_id) open a record from its report."""
    return await in_transaction(
        request, file_service.link_child, principal=principal, case_id=case_id, body=body
    )


@router.post("/cases/{case_id}/children/{child_id}/unlink")
async def unlink_child(
    request: Request,
    case_id: int,
    child_id: int,
    body: ReasonIn,
    principal: Annotated[Principal, Depends(CENTER)],
) -> dict[str, Any]:
    return await in_transaction(
        request, file_service.unlink_child, principal=principal, case_id=case_id,
        child_id=child_id, body=body,
    )


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
