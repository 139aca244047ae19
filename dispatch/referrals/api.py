"""Referrals for liaisons and the center: the queue, claiming, working, returning, re-routing
(the operations: `dispatch.referrals.service`)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from channels.web import client_ip, json_only
from dispatch.common.endpoints import Caller, CaseFilter, Casework, Limit, acting
from dispatch.referrals import service
from dispatch.referrals.service import (
    LiaisonAction,
    NoteIn,
    OutcomeIn,
    ReasonIn,
    ReferralList,
    ReferralOut,
    RouteIn,
)
from dispatch.staff.auth import runtime_of
from dispatch.staff.permissions import REFERRAL_CLAIM, REFERRAL_READ, requires

router = APIRouter(prefix="/api/v1/referrals", tags=["referrals"])
Viewers = acting(requires(REFERRAL_READ))
Liaison = acting(requires(REFERRAL_CLAIM))
# A JSON body, checked before the caller (as these endpoints always have).
JSON = [Depends(json_only)]


@router.get("", response_model=ReferralList)
async def list_referrals(
    caller: Viewers,
    status: Annotated[
        str | None, Query(max_length=20, json_schema_extra={"x-choices": "referral_status"})
    ] = None,
    limit: Limit = 50,
    case_id: CaseFilter = None,
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> ReferralList:
    """What the caller may see, most urgent first (claim deadline, then age); `case_id`
    narrows it to one case's shares; `after` is the previous page's `next_after`."""
    return await caller.run(
        service.list_referrals, status=status, limit=limit, case_id=case_id, after=after
    )


@router.post("/{referral_id}/claim", response_model=ReferralOut)
async def claim_referral(referral_id: int, caller: Liaison) -> ReferralOut:
    """200 for the one liaison who gets it; 409 for everyone else."""
    return await service.claim_referral(
        engine=runtime_of(caller.request).engine,
        principal=caller.principal,
        ip=client_ip(caller.request),
        referral_id=referral_id,
    )


async def _act(caller: Caller, referral_id: int, event: LiaisonAction, note: str) -> ReferralOut:
    return await caller.run(service.record_action, referral_id=referral_id, event=event, note=note)


@router.post("/{referral_id}/progress", response_model=ReferralOut, dependencies=JSON)
async def progress(referral_id: int, body: NoteIn, caller: Liaison) -> ReferralOut:
    return await _act(caller, referral_id, "progress", body.note)


@router.post("/{referral_id}/complete", response_model=ReferralOut, dependencies=JSON)
async def complete(referral_id: int, body: OutcomeIn, caller: Liaison) -> ReferralOut:
    return await _act(caller, referral_id, "complete", body.outcome)


@router.post("/{referral_id}/return", response_model=ReferralOut, dependencies=JSON)
async def return_referral(referral_id: int, body: ReasonIn, caller: Liaison) -> ReferralOut:
    return await _act(caller, referral_id, "return", body.reason)


@router.post("/route/{case_id}", response_model=ReferralOut, status_code=201, dependencies=JSON)
async def route_case(case_id: int, body: RouteIn, caller: Casework) -> ReferralOut:
    """Send a case's share to a department by hand (after a return, or when unrouted)."""
    return await caller.run(service.route_case, case_id=case_id, body=body)
