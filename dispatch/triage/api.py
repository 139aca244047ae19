"""`POST /api/v1/triage`: the service's judgement of a text, for live help while a call is
taken (the operation: `dispatch.triage.service`)."""

from typing import Annotated

from fastapi import APIRouter, Depends

from channels.web import json_only
from dispatch.staff.auth import Principal
from dispatch.staff.permissions import TRIAGE, requires
from dispatch.triage.service import TriageIn, TriageOut, judgement_out

router = APIRouter(prefix="/api/v1", tags=["triage"], dependencies=[Depends(json_only)])
STAFF = requires(TRIAGE)


@router.post("/triage", response_model=TriageOut)
async def triage(
    body: TriageIn, principal: Annotated[Principal, Depends(STAFF)]
) -> TriageOut:
    """Categories, danger, mandatory situations, place and whether it is a case at all,
    with the phrases behind each."""
    return judgement_out(body.text)
