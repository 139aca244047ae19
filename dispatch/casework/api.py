"""Casework through the API: owners and pairing, "my cases", the help plan, call wrap-up,
assessments, guardianship, conferences, closing, the reporter's no-contact mark.

Thin: each endpoint names who may call it and runs one operation of
`dispatch.casework.service` (the console's pages run the same ones) in a transaction.
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path

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
from dispatch.common.endpoints import Casework, CenterStaff, JsonBody, Limit, acting
from dispatch.staff.auth import require

router = APIRouter(tags=["casework"])
Holders = acting(require("caseworker", "supervisor", "child_director", "station_worker"))
Area = acting(require("child_director", "station_worker"))
TaskViewers = acting(require("operator", "caseworker", "supervisor", "liaison"))


@router.put("/api/v1/cases/{case_id}/owner", response_model=HoldersOut)
async def put_owner(case_id: int, body: AssignIn, caller: Casework, _json: JsonBody) -> HoldersOut:
    """The case's responsible caseworker; a change of owner needs a reason."""
    return await caller.run(service.assign_holder, case_id=case_id, kind="owner", body=body)


@router.put("/api/v1/cases/{case_id}/pairing", response_model=HoldersOut)
async def put_pairing(
    case_id: int, body: AssignIn, caller: Casework, _json: JsonBody
) -> HoldersOut:
    """The pairing person (结对帮扶): a caseworker, or the area's 儿童主任 / 未保站 worker."""
    return await caller.run(service.assign_holder, case_id=case_id, kind="pairing", body=body)


@router.get("/api/v1/casework/mine", response_model=MyCaseList)
async def mine(caller: Holders, limit: Limit = 50, include_closed: bool = False) -> MyCaseList:
    """The cases the caller holds as owner or pairing person, the next visit due first."""
    return await caller.run(service.my_cases, limit=limit, include_closed=include_closed)


@router.post("/api/v1/cases/{case_id}/plan", response_model=PlanOut)
async def post_plan(case_id: int, body: PlanIn, caller: Casework, _json: JsonBody) -> PlanOut:
    """一案一策: needs → lead departments' referrals (after approval for red and orange)."""
    return await caller.run(service.propose_plan, case_id=case_id, body=body)


@router.post("/api/v1/cases/{case_id}/plan/approve", response_model=PlanOut)
async def approve_plan(case_id: int, caller: Casework) -> PlanOut:
    """A supervisor adopts the waiting plan; its referrals go out now."""
    return await caller.run(service.approve_plan, case_id=case_id)


@router.get("/api/v1/cases/{case_id}/plan", response_model=PlanOut)
async def get_plan(case_id: int, caller: Casework) -> PlanOut:
    """The case's current plan (the waiting one, else the adopted one), each item's state."""
    return await caller.run(service.read_plan, case_id=case_id)


@router.post("/api/v1/calls/{call_sid}/wrapup", response_model=WrapupOut, status_code=201)
async def post_wrapup(
    call_sid: Annotated[str, Path(max_length=64)],
    body: WrapupIn,
    caller: CenterStaff,
    _json: JsonBody,
) -> WrapupOut:
    """Close an answered call with what it was (the call's sid, or its number)."""
    return await caller.run(service.wrap_up_call, call_sid=call_sid, body=body)


@router.get("/api/v1/calls/wrapups/stats", response_model=WrapupStats)
async def wrapup_stats(
    caller: CenterStaff, since: datetime | None = None, until: datetime | None = None
) -> WrapupStats:
    """Answered calls of the period by wrap-up type (default: the last 30 days)."""
    return await caller.run(service.wrapup_stats, since=since, until=until)


@router.post("/api/v1/casework/concerns", response_model=ReportCreated, status_code=201)
async def post_concern(body: ConcernIn, caller: Area, _json: JsonBody) -> ReportCreated:
    """A 儿童主任 or 未保站 worker reports a child of their area: it opens a report."""
    return await caller.run(service.raise_concern, body=body)


@router.post("/api/v1/cases/{case_id}/assessments", response_model=AssessmentOut, status_code=201)
async def post_written_assessment(
    case_id: int, body: AssessIn, caller: Casework, _json: JsonBody
) -> AssessmentOut:
    """An assessment to the form: the answers propose a level; accept or override it."""
    return await caller.run(service.assess, case_id=case_id, body=body)


@router.get("/api/v1/cases/{case_id}/assessments", response_model=AssessmentList)
async def list_written_assessments(case_id: int, caller: Casework) -> AssessmentList:
    """Every version of the case's written assessment, newest first."""
    return await caller.run(service.list_assessments, case_id=case_id)


@router.post("/api/v1/cases/{case_id}/placements", response_model=PlacementOut, status_code=201)
async def post_placement(
    case_id: int, body: PlacementIn, caller: Casework, _json: JsonBody
) -> PlacementOut:
    """A guardianship or placement record: kind, responsible body, start and end."""
    return await caller.run(service.add_placement, case_id=case_id, body=body)


@router.post(
    "/api/v1/cases/{case_id}/interventions", response_model=InterventionOut, status_code=201
)
async def post_intervention(
    case_id: int, body: InterventionIn, caller: Casework, _json: JsonBody
) -> InterventionOut:
    """A step against a failing guardian (劝诫 → 训诫 → 处罚 → 撤销监护资格诉讼)."""
    return await caller.run(service.add_intervention, case_id=case_id, body=body)


@router.get("/api/v1/cases/{case_id}/guardianship", response_model=GuardianshipOut)
async def get_guardianship(case_id: int, caller: Casework) -> GuardianshipOut:
    return await caller.run(service.read_guardianship, case_id=case_id)


@router.post("/api/v1/cases/{case_id}/meetings", response_model=MeetingOut, status_code=201)
async def post_meeting(
    case_id: int, body: MeetingIn, caller: Casework, _json: JsonBody
) -> MeetingOut:
    """Call a case conference and invite the departments (console and SMS)."""
    return await caller.run(service.schedule_meeting, case_id=case_id, body=body)


@router.get("/api/v1/cases/{case_id}/meetings", response_model=MeetingList)
async def case_meetings(case_id: int, caller: Casework) -> MeetingList:
    """The case's conferences, and why one is proposed now (the configured triggers)."""
    return await caller.run(service.case_meetings, case_id=case_id)


@router.get("/api/v1/meetings", response_model=MeetingList)
async def my_meetings(caller: TaskViewers) -> MeetingList:
    """Conferences still to be held that the caller's department is invited to (or, for the
    center, on its cases)."""
    return await caller.run(service.my_meetings)


@router.post("/api/v1/meetings/{meeting_id}/record", response_model=HeldOut)
async def record_meeting(
    meeting_id: int, body: HeldIn, caller: Casework, _json: JsonBody
) -> HeldOut:
    """The conference was held: attendance, notes, and each decision as a task."""
    return await caller.run(service.record_meeting, meeting_id=meeting_id, body=body)


@router.post("/api/v1/cases/{case_id}/close", response_model=ClosedOut)
async def post_close(case_id: int, body: CloseIn, caller: Casework, _json: JsonBody) -> ClosedOut:
    """Close to criteria with a type; open referrals' liaisons and the reporter are told."""
    return await caller.run(service.close_case, case_id=case_id, body=body)


@router.put("/api/v1/reports/{report_id}/no-contact", status_code=204)
async def put_no_contact(
    report_id: int, body: NoContactIn, caller: CenterStaff, _json: JsonBody
) -> None:
    """Mark a reporter not to be contacted about the handling (the receipt still works)."""
    await caller.run(service.mark_no_contact, report_id=report_id, body=body)
