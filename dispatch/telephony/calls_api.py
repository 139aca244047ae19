"""Staff API for hotline calls: who waits now, call records, registering a report during a
call, and the caller's profile (earlier reports from the same number).

Center staff only, scoped through the call's case, audited (the operations:
`dispatch.telephony.calls_service`). Numbers are shown masked: the profile is found through
the call, never by a number in a URL.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from channels.voice.recordings import fetch_recording
from channels.web import in_transaction, json_only, sessions
from db.columns import CASE_ID_MAX
from db.engine import transaction
from dispatch.staff.auth import Principal
from dispatch.staff.permissions import CASE_DESK, requires
from dispatch.telephony import calls_service
from dispatch.telephony.calls_service import (
    CallDetail,
    CallerProfile,
    CallList,
    CallReport,
    LinkIn,
    QueueView,
)
from dispatch.telephony.params import CallSid
from workflows.cases.intake import ReportIn

router = APIRouter(prefix="/api/v1/voice", tags=["voice"])
CENTER_STAFF = requires(CASE_DESK)
Staff = Annotated[Principal, Depends(CENTER_STAFF)]


@router.get("/queue", response_model=QueueView)
async def queue_view(request: Request, principal: Staff) -> QueueView:
    """Callers waiting now, the emergency queue first: what the console shows and serves.
    Not audited: the console polls it, and it holds no case data (numbers masked)."""
    async with transaction(sessions(request)) as session:
        return await calls_service.queue_view(session=session, principal=principal)


@router.get("/calls", response_model=CallList)
async def list_calls(
    request: Request,
    principal: Staff,
    case_id: Annotated[int | None, Query(ge=1, le=CASE_ID_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> CallList:
    """Most recent first, numbers masked; `case_id` gives a case's calls."""
    return await in_transaction(
        request, calls_service.list_calls, principal=principal, case_id=case_id, limit=limit,
        before_id=before_id
    )


@router.get("/calls/{call_sid}", response_model=CallDetail)
async def get_call(request: Request, call_sid: CallSid, principal: Staff) -> CallDetail:
    return await in_transaction(
        request, calls_service.get_call, principal=principal, call_sid=call_sid
    )


@router.get(
    "/calls/{call_sid}/recording",
    response_class=Response,
    responses={200: {"description": "MP3", "content": {"audio/mpeg": {}}}},
)
async def call_recording(request: Request, call_sid: CallSid, principal: Staff) -> Response:
    """The voicemail's audio, fetched from Twilio for the console (not stored here)."""
    url = await in_transaction(
        request, calls_service.recording_url, principal=principal, call_sid=call_sid
    )
    audio = await fetch_recording(request.app.state.runtime.settings, url)
    return Response(audio, media_type="audio/mpeg", headers={"Cache-Control": "no-store"})


@router.post(
    "/calls/{call_sid}/report",
    status_code=201,
    response_model=CallReport,
    dependencies=[Depends(json_only)],
)
async def report_during_call(
    request: Request, call_sid: CallSid, body: ReportIn, principal: Staff
) -> CallReport:
    """The report an operator registers while on the call (the web form's fields), linked
    to the CallSid. One per call: posting again returns the same report (`duplicate`)."""
    return await in_transaction(
        request, calls_service.report_during_call, principal=principal, call_sid=call_sid, body=body
    )


@router.post("/calls/{call_sid}/link", response_model=CallDetail, dependencies=[Depends(json_only)])
async def link_call(
    request: Request, call_sid: CallSid, body: LinkIn, principal: Staff
) -> CallDetail:
    """The call is about a case that already exists (a repeat caller): link it there."""
    return await in_transaction(
        request, calls_service.link_call, principal=principal, call_sid=call_sid, body=body
    )


@router.get("/calls/{call_sid}/caller", response_model=CallerProfile)
async def caller_profile(request: Request, call_sid: CallSid, principal: Staff) -> CallerProfile:
    """What the hotline knows of this call's number: earlier calls, texts and reports."""
    return await in_transaction(
        request, calls_service.caller_profile, principal=principal, call_sid=call_sid
    )
