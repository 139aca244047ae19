"""Casework through the API: owners and pairing, "my cases", the help plan, call wrap-up,
assessments, guardianship, conferences, closing, the reporter's no-contact mark.

Thin: each endpoint names who may call it and runs one operation of
`dispatch.casework.service` (the console's pages run the same ones) in a transaction.
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from channels.web import in_transaction, json_only
from channels.webform import ReportCreated
from dispatch.casework import service
from dispatch.casework.service import (
    AssessIn,
    AssessmentList,
    AssessmentOut,
    AssignIn,
    ClosedOut,
    CloseIn,
    ConcernIn,
    GuardianshipOut,
    HeldIn,
    HeldOut,
    HoldersOut,
    InterventionIn,
    InterventionOut,
    MeetingIn,
    MeetingList,
    MeetingOut,
    MyCaseList,
    NoContactIn,
    PlacementIn,
    PlacementOut,
    PlanIn,
    PlanOut,
    WrapupIn,
    WrapupOut,
    WrapupStats,
)
from dispatch.staff.auth import Principal, require, require_center

router = APIRouter(tags=["casework"])
CASEWORK = require_center("caseworker", "supervisor")
HOLDERS = require("caseworker", "supervisor", "child_director", "station_worker")
CALL_DESK = require_center("operator", "caseworker", "supervisor")
# After the caller's check: a stranger learns 401, not what the endpoint expects.
JsonBody = Annotated[None, Depends(json_only)]
AREA = require("child_director", "station_worker")
TASK_VIEWERS = require("operator", "caseworker", "supervisor", "liaison")
CENTER_STAFF = require_center("operator", "caseworker", "supervisor")


@router.put("/api/v1/cases/{case_id}/owner", response_model=HoldersOut)
async def put_owner(
    request: Request,
    case_id: int,
    body: AssignIn,
    principal: Annotated[Principal, Depends(CASEWORK)],
    _json: JsonBody,
) -> HoldersOut:
    """The case's responsible caseworker; a change of owner needs a reason."""
    return await in_transaction(
        request, service.assign_holder, principal=principal, case_id=case_id, kind="owner",
        body=body,
    )


@router.put("/api/v1/cases/{case_id}/pairing", response_model=HoldersOut)
async def put_pairing(
    request: Request,
    case_id: int,
    body: AssignIn,
    principal: Annotated[Principal, Depends(CASEWORK)],
    _json: JsonBody,
) -> HoldersOut:
    """The pairing person (结对帮扶): a caseworker, or the area's 儿童主任 / 未保站 worker."""
    return await in_transaction(
        request, service.assign_holder, principal=principal, case_id=case_id, kind="pairing",
        body=body,
    )


@router.get("/api/v1/casework/mine", response_model=MyCaseList)
async def mine(
    request: Request,
    principal: Annotated[Principal, Depends(HOLDERS)],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    include_closed: bool = False,
) -> MyCaseList:
    """The cases the caller holds as owner or pairing person, the next visit due first."""
    return await in_transaction(
        request, service.my_cases, principal=principal, limit=limit,
        include_closed=include_closed,
    )


@router.post("/api/v1/cases/{case_id}/plan", response_model=PlanOut)
async def post_plan(
    request: Request,
    case_id: int,
    body: PlanIn,
    principal: Annotated[Principal, Depends(CASEWORK)],
    _json: JsonBody,
) -> PlanOut:
    """一案一策: needs → lead departments' referrals (after approval for red and orange)."""
    return await in_transaction(
        request, service.propose_plan, principal=principal, case_id=case_id, body=body
    )


@router.post("/api/v1/cases/{case_id}/plan/approve", response_model=PlanOut)
async def approve_plan(
    request: Request, case_id: int, principal: Annotated[Principal, Depends(CASEWORK)]
) -> PlanOut:
    """A supervisor adopts the waiting plan; its referrals go out now."""
    return await in_transaction(
        request, service.approve_plan, principal=principal, case_id=case_id
    )


@router.get("/api/v1/cases/{case_id}/plan", response_model=PlanOut)
async def get_plan(
    request: Request, case_id: int, principal: Annotated[Principal, Depends(CASEWORK)]
) -> PlanOut:
    """The case's current plan (the waiting one, else the adopted one), each item's state."""
    return await in_transaction(request, service.read_plan, principal=principal, case_id=case_id)


@router.post("/api/v1/calls/{call_sid}/wrapup", response_model=WrapupOut, status_code=201)
async def post_wrapup(
    request: Request,
    call_sid: Annotated[str, Path(max_length=64)],
    body: WrapupIn,
    principal: Annotated[Principal, Depends(CALL_DESK)],
    _json: JsonBody,
) -> WrapupOut:
    """Close an answered call with what it was (the call's sid, or its number)."""
    return await in_transaction(
        request, service.wrap_up_call, principal=principal, call_sid=call_sid, body=body
    )


@router.get("/api/v1/calls/wrapups/stats", response_model=WrapupStats)
async def wrapup_stats(
    request: Request,
    principal: Annotated[Principal, Depends(CALL_DESK)],
    since: datetime | None = None,
    until: datetime | None = None,
) -> WrapupStats:
    """Answered calls of the period by wrap-up type (default: the last 30 days)."""
    return await in_transaction(
        request, service.wrapup_stats, principal=principal, since=since, until=until
    )


@router.post("/api/v1/casework/concerns", response_model=ReportCreated, status_code=201)
async def post_concern(
    request: Request,
    body: ConcernIn,
    principal: Annotated[Principal, Depends(AREA)],
    _json: JsonBody,
) -> ReportCreated:
    """A 儿童主任 or 未保站 worker reports a child of their area: it opens a report."""
    return await in_transaction(request, service.raise_concern, principal=principal, body=body)


@router.post("/api/v1/cases/{case_id}/assessments", response_model=AssessmentOut, status_code=201)
async def post_written_assessment(
    request: Request,
    case_id: int,
    body: AssessIn,
    principal: Annotated[Principal, Depends(CASEWORK)],
    _json: JsonBody,
) -> AssessmentOut:
    """An assessment to the form: the answers propose a level; accept or override it."""
    return await in_transaction(
        request, service.assess, principal=principal, case_id=case_id, body=body
    )


@router.get("/api/v1/cases/{case_id}/assessments", response_model=AssessmentList)
async def list_written_assessments(
    request: Request,
    case_id: int,
    principal: Annotated[Principal, Depends(CASEWORK)],
) -> AssessmentList:
    """Every version of the case's written assessment, newest first."""
    return await in_transaction(
        request, service.list_assessments, principal=principal, case_id=case_id
    )


@router.post("/api/v1/cases/{case_id}/placements", response_model=PlacementOut, status_code=201)
async def post_placement(
    request: Request,
    case_id: int,
    body: PlacementIn,
    principal: Annotated[Principal, Depends(CASEWORK)],
    _json: JsonBody,
) -> PlacementOut:
    """A guardianship or placement record: kind, responsible body, start and end."""
    return await in_transaction(
        request, service.add_placement, principal=principal, case_id=case_id, body=body
    )


@router.post(
    "/api/v1/cases/{case_id}/interventions", response_model=InterventionOut, status_code=201
)
async def post_intervention(
    request: Request,
    case_id: int,
    body: InterventionIn,
    principal: Annotated[Principal, Depends(CASEWORK)],
    _json: JsonBody,
) -> InterventionOut:
    """A step against a failing guardian (劝诫 → 训诫 → 处罚 → 撤销监护资格诉讼)."""
    return await in_transaction(
        request, service.add_intervention, principal=principal, case_id=case_id, body=body
    )


@router.get("/api/v1/cases/{case_id}/guardianship", response_model=GuardianshipOut)
async def get_guardianship(
    request: Request, case_id: int, principal: Annotated[Principal, Depends(CASEWORK)]
) -> GuardianshipOut:
    return await in_transaction(
        request, service.read_guardianship, principal=principal, case_id=case_id
    )


@router.post("/api/v1/cases/{case_id}/meetings", response_model=MeetingOut, status_code=201)
async def post_meeting(
    request: Request,
    case_id: int,
    body: MeetingIn,
    principal: Annotated[Principal, Depends(CASEWORK)],
    _json: JsonBody,
) -> MeetingOut:
    """Call a case conference and invite the departments (console and SMS)."""
    return await in_transaction(
        request, service.schedule_meeting, principal=principal, case_id=case_id, body=body
    )


@router.get("/api/v1/cases/{case_id}/meetings", response_model=MeetingList)
async def case_meetings(
    request: Request, case_id: int, principal: Annotated[Principal, Depends(CASEWORK)]
) -> MeetingList:
    """The case's conferences, and why one is proposed now (the configured triggers)."""
    return await in_transaction(
        request, service.case_meetings, principal=principal, case_id=case_id
    )


@router.get("/api/v1/meetings", response_model=MeetingList)
async def my_meetings(
    request: Request, principal: Annotated[Principal, Depends(TASK_VIEWERS)]
) -> MeetingList:
    """Conferences still to be held that the caller's department is invited to (or, for the
    center, on its cases)."""
    return await in_transaction(request, service.my_meetings, principal=principal)


@router.post("/api/v1/meetings/{meeting_id}/record", response_model=HeldOut)
async def record_meeting(
    request: Request,
    meeting_id: int,
    body: HeldIn,
    principal: Annotated[Principal, Depends(CASEWORK)],
    _json: JsonBody,
) -> HeldOut:
    """The conference was held: attendance, notes, and each decision as a task."""
    return await in_transaction(
        request, service.record_meeting, principal=principal, meeting_id=meeting_id, body=body
    )


@router.post("/api/v1/cases/{case_id}/close", response_model=ClosedOut)
async def post_close(
    request: Request,
    case_id: int,
    body: CloseIn,
    principal: Annotated[Principal, Depends(CASEWORK)],
    _json: JsonBody,
) -> ClosedOut:
    """Close to criteria with a type; open referrals' liaisons and the reporter are told."""
    return await in_transaction(
        request, service.close_case, principal=principal, case_id=case_id, body=body
    )


@router.put("/api/v1/reports/{report_id}/no-contact", status_code=204)
async def put_no_contact(
    request: Request,
    report_id: int,
    body: NoContactIn,
    principal: Annotated[Principal, Depends(CENTER_STAFF)],
    _json: JsonBody,
) -> None:
    """Mark a reporter not to be contacted about the handling (the receipt still works)."""
    await in_transaction(
        request, service.mark_no_contact, principal=principal, report_id=report_id, body=body
    )
