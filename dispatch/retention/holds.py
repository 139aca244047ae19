"""The legal hold's JSON routes (`GET/PUT/DELETE /api/v1/cases/{id}/legal-hold`): the
permission, the transaction and the operation of `dispatch.retention.service`."""

from typing import Annotated

from fastapi import APIRouter, Depends

from channels.web import json_only
from dispatch.common.endpoints import acting
from dispatch.retention import service
from dispatch.retention.service import HoldIn, HoldOut
from dispatch.staff.auth import Principal, current_principal
from dispatch.staff.permissions import CASE_READ, requires

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])
Readers = acting(requires(CASE_READ))


async def holder(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """The center's supervisor only: a department's supervisor holds the role, not the job."""
    service.require_holder(principal)
    return principal


HOLDERS = [Depends(current_principal), Depends(json_only)]
Holder = acting(holder)


@router.get("/{case_id}/legal-hold", response_model=HoldOut)
async def get_hold(case_id: int, caller: Readers) -> HoldOut:
    return await caller.run(service.get_hold, case_id=case_id)


@router.put("/{case_id}/legal-hold", response_model=HoldOut, dependencies=HOLDERS)
async def place_hold(case_id: int, body: HoldIn, caller: Holder) -> HoldOut:
    """Place the hold; sent again with the same reason (a retry), it changes nothing."""
    return await caller.run(service.place_hold, case_id=case_id, reason=body.reason)


@router.delete("/{case_id}/legal-hold", response_model=HoldOut, dependencies=HOLDERS)
async def lift_hold(case_id: int, body: HoldIn, caller: Holder) -> HoldOut:
    """Lift the hold (with a reason, like placing it): the retention periods apply again."""
    return await caller.run(service.lift_hold, case_id=case_id, reason=body.reason)
