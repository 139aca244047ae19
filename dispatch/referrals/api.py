"""Referrals for liaisons and the center: the queue, claiming, working, returning, re-routing
(the operations: `dispatch.referrals.service`)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from channels.web import client_ip, in_transaction, json_only
from db.columns import CASE_ID_MAX
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
from dispatch.staff import permissions
from dispatch.staff.auth import Principal, runtime_of
from dispatch.staff.permissions import REFERRAL_CLAIM, REFERRAL_READ, requires

router = APIRouter(prefix="/api/v1/referrals", tags=["referrals"])
VIEWERS = requires(REFERRAL_READ)
LIAISON = requires(REFERRAL_CLAIM)
CASEWORK = requires(permissions.CASEWORK)


@router.get("", response_model=ReferralList)
async def list_referrals(
    request: Request,
    principal: Annotated[Principal, Depends(VIEWERS)],
    status: Annotated[
        str | None, Query(max_length=20, json_schema_extra={"x-choices": "referral_status"})
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    case_id: Annotated[int | None, Query(ge=1, le=CASE_ID_MAX)] = None,
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> ReferralList:
    """What the caller may see, most urgent first (claim deadline, then age); `case_id`
    narrows it to one case's shares; `after` is the previous page's `next_after`."""
    return await in_transaction(
        request, service.list_referrals, principal=principal, status=status, limit=limit,
        case_id=case_id, after=after
    )


@router.post("/{referral_id}/claim", response_model=ReferralOut)
async def claim_referral(
    request: Request, referral_id: int, principal: Annotated[Principal, Depends(LIAISON)]
) -> ReferralOut:
    """200 for the one liaison who gets it; 409 for everyone else."""
    return await service.claim_referral(
        engine=runtime_of(request).engine, principal=principal, ip=client_ip(request),
        referral_id=referral_id,
    )


async def _act(
    request: Request, referral_id: int, principal: Principal, event: LiaisonAction, note: str
) -> ReferralOut:
    return await in_transaction(
        request, service.record_action, principal=principal, referral_id=referral_id, event=event,
        note=note
    )


@router.post(
    "/{referral_id}/progress", response_model=ReferralOut, dependencies=[Depends(json_only)]
)
async def progress(
    request: Request,
    referral_id: int,
    body: NoteIn,
    principal: Annotated[Principal, Depends(LIAISON)],
) -> ReferralOut:
    return await _act(request, referral_id, principal, "progress", body.note)


@router.post(
    "/{referral_id}/complete", response_model=ReferralOut, dependencies=[Depends(json_only)]
)
async def complete(
    request: Request,
    referral_id: int,
    body: OutcomeIn,
    principal: Annotated[Principal, Depends(LIAISON)],
) -> ReferralOut:
    return await _act(request, referral_id, principal, "complete", body.outcome)


@router.post("/{referral_id}/return", response_model=ReferralOut, dependencies=[Depends(json_only)])
async def return_referral(
    request: Request,
    referral_id: int,
    body: ReasonIn,
    principal: Annotated[Principal, Depends(LIAISON)],
) -> ReferralOut:
    return await _act(request, referral_id, principal, "return", body.reason)


@router.post(
    "/route/{case_id}",
    response_model=ReferralOut,
    status_code=201,
    dependencies=[Depends(json_only)],
)
async def route_case(
    request: Request,
    case_id: int,
    body: RouteIn,
    principal: Annotated[Principal, Depends(CASEWORK)],
) -> ReferralOut:
    """Send a case's share to a department by hand (after a return, or when unrouted)."""
    return await in_transaction(
        request, service.route_case, principal=principal, case_id=case_id, body=body
    )
