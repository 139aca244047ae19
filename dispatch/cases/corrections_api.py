"""`PATCH /api/v1/cases/{id}`: the center corrects what intake made of a case (categories,
emergency, jurisdiction, child details), with a reason; audited, on the timeline, routing
re-planned, the correction kept as a labelled example (dispatch.cases.corrections)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from channels.web import client_ip, json_only, sessions
from db.engine import transaction
from dispatch.cases import corrections, service
from dispatch.cases.corrections import CaseCorrectionIn
from dispatch.cases.service import CaseDetail
from dispatch.staff.auth import Principal
from dispatch.staff.permissions import CASE_DESK, requires

router = APIRouter(prefix="/api/v1/cases", tags=["cases"], dependencies=[Depends(json_only)])
CENTER_STAFF = requires(CASE_DESK)


@router.patch("/{case_id}", response_model=CaseDetail)
async def correct(
    request: Request,
    case_id: int,
    body: CaseCorrectionIn,
    principal: Annotated[Principal, Depends(CENTER_STAFF)],
) -> CaseDetail:
    """Correct the case; answers it as `GET /api/v1/cases/{id}` does."""
    ip = client_ip(request)
    async with transaction(sessions(request)) as session:
        await corrections.correct(
            session=session, principal=principal, ip=ip, case_id=case_id, body=body
        )
    async with transaction(sessions(request)) as session:
        return await service.get_case(session=session, principal=principal, ip=ip, case_id=case_id)
