"""Staff API that changes cases: workflow events, assessment, follow-up visits (the
operations: `dispatch.cases.service`)."""

from fastapi import APIRouter, Depends

from channels.web import json_only
from dispatch.cases import service
from dispatch.cases.service import AssessmentIn, EventIn, StateOut, VisitIn, VisitOut
from dispatch.common.endpoints import Casework, CenterStaff, acting
from dispatch.staff import permissions
from dispatch.staff.permissions import requires

router = APIRouter(prefix="/api/v1/cases", tags=["workflow"], dependencies=[Depends(json_only)])
Visitors = acting(requires(permissions.VISIT))


@router.post("/{case_id}/events", response_model=StateOut)
async def post_event(case_id: int, body: EventIn, caller: CenterStaff) -> StateOut:
    """Drive the workflow. A transition the workflow does not allow is 409, with the reason."""
    return await caller.run(service.send_event, case_id=case_id, body=body)


@router.post("/{case_id}/assessment", response_model=StateOut)
async def post_assessment(case_id: int, body: AssessmentIn, caller: Casework) -> StateOut:
    """Risk level, guardianship and needs. Open referrals' deadlines follow the new level."""
    return await caller.run(service.assess, case_id=case_id, body=body)


@router.post("/{case_id}/visits", response_model=VisitOut, status_code=201)
async def post_visit(case_id: int, body: VisitIn, caller: Visitors) -> VisitOut:
    """Record a follow-up visit; the next one is planned at the (new) level's interval."""
    return await caller.run(service.record_visit, case_id=case_id, body=body)
