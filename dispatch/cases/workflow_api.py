"""Staff API that changes cases: workflow events, assessment, follow-up visits (the
operations: `dispatch.cases.service`)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from channels.web import in_transaction, json_only
from dispatch.cases import service
from dispatch.cases.service import AssessmentIn, EventIn, StateOut, VisitIn, VisitOut
from dispatch.staff import permissions
from dispatch.staff.auth import Principal
from dispatch.staff.permissions import CASE_DESK, requires

router = APIRouter(prefix="/api/v1/cases", tags=["workflow"], dependencies=[Depends(json_only)])
CENTER_STAFF = requires(CASE_DESK)
CASEWORK = requires(permissions.CASEWORK)
VISITORS = requires(permissions.VISIT)


@router.post("/{case_id}/events", response_model=StateOut)
async def post_event(
    request: Request,
    case_id: int,
    body: EventIn,
    principal: Annotated[Principal, Depends(CENTER_STAFF)],
) -> StateOut:
    """Drive the workflow. A transition the workflow does not allow is 409, with the reason."""
    return await in_transaction(
        request, service.send_event, principal=principal, case_id=case_id, body=body
    )


@router.post("/{case_id}/assessment", response_model=StateOut)
async def post_assessment(
    request: Request,
    case_id: int,
    body: AssessmentIn,
    principal: Annotated[Principal, Depends(CASEWORK)],
) -> StateOut:
    """Risk level, guardianship and needs. Open referrals' deadlines follow the new level."""
    return await in_transaction(
        request, service.assess, principal=principal, case_id=case_id, body=body
    )


@router.post("/{case_id}/visits", response_model=VisitOut, status_code=201)
async def post_visit(
    request: Request,
    case_id: int,
    body: VisitIn,
    principal: Annotated[Principal, Depends(VISITORS)],
) -> VisitOut:
    """Record a follow-up visit; the next one is planned at the (new) level's interval."""
    return await in_transaction(
        request, service.record_visit, principal=principal, case_id=case_id, body=body
    )
