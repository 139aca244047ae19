"""`PATCH /api/v1/cases/{id}`: the center corrects what intake made of a case (categories,
emergency, jurisdiction, child details), with a reason; audited, on the timeline, routing
re-planned, the correction kept as a labelled example (dispatch.cases.corrections)."""

from fastapi import APIRouter, Depends

from channels.web import json_only
from dispatch.cases import corrections, service
from dispatch.cases.corrections import CaseCorrectionIn
from dispatch.cases.service import CaseDetail
from dispatch.common.endpoints import CenterStaff

router = APIRouter(prefix="/api/v1/cases", tags=["cases"], dependencies=[Depends(json_only)])


@router.patch("/{case_id}", response_model=CaseDetail)
async def correct(case_id: int, body: CaseCorrectionIn, caller: CenterStaff) -> CaseDetail:
    """Correct the case; answers it as `GET /api/v1/cases/{id}` does."""
    await caller.run(corrections.correct, case_id=case_id, body=body)
    # Read in a transaction of its own, after the correction's has committed.
    return await caller.run(service.get_case, case_id=case_id)
