"""Staff API for hotline calls: who waits now, call records, registering a report during a
call, and the caller's profile (earlier reports from the same number).

Center staff only, scoped through the call's case, audited (the operations:
`dispatch.telephony.calls_service`). Numbers are shown masked: the profile is found through
the call, never by a number in a URL.
"""

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from channels.voice.recordings import fetch_recording
from channels.web import json_only, sessions
from db.engine import transaction
from dispatch.common.endpoints import CasePaging, CenterStaff
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


@router.get("/queue", response_model=QueueView)
async def queue_view(caller: CenterStaff) -> QueueView:
    """Callers waiting now, the emergency queue first: what the console shows and serves.
    Not audited: the console polls it, and it holds no case data (numbers masked)."""
    async with transaction(sessions(caller.request)) as session:
        return await calls_service.queue_view(session=session, principal=caller.principal)


@router.get("/calls", response_model=CallList)
async def list_calls(caller: CenterStaff, page: CasePaging) -> CallList:
    """Most recent first, numbers masked; `case_id` gives a case's calls."""
    return await caller.run(calls_service.list_calls, page=page)


@router.get("/calls/{call_sid}", response_model=CallDetail)
async def get_call(call_sid: CallSid, caller: CenterStaff) -> CallDetail:
    return await caller.run(calls_service.get_call, call_sid=call_sid)


@router.get(
    "/calls/{call_sid}/recording",
    response_class=Response,
    responses={200: {"description": "MP3", "content": {"audio/mpeg": {}}}},
)
async def call_recording(call_sid: CallSid, caller: CenterStaff) -> Response:
    """The voicemail's audio, fetched from Twilio for the console (not stored here)."""
    url = await caller.run(calls_service.recording_url, call_sid=call_sid)
    audio = await fetch_recording(caller.request.app.state.runtime.settings, url)
    return Response(audio, media_type="audio/mpeg", headers={"Cache-Control": "no-store"})


@router.post(
    "/calls/{call_sid}/report",
    status_code=201,
    response_model=CallReport,
    dependencies=[Depends(json_only)],
)
async def report_during_call(call_sid: CallSid, body: ReportIn, caller: CenterStaff) -> CallReport:
    """The report an operator registers while on the call (the web form's fields), linked
    to the CallSid. One per call: posting again returns the same report (`duplicate`)."""
    return await caller.run(calls_service.report_during_call, call_sid=call_sid, body=body)


@router.post("/calls/{call_sid}/link", response_model=CallDetail, dependencies=[Depends(json_only)])
async def link_call(call_sid: CallSid, body: LinkIn, caller: CenterStaff) -> CallDetail:
    """The call is about a case that already exists (a repeat caller): link it there."""
    return await caller.run(calls_service.link_call, call_sid=call_sid, body=body)


@router.get("/calls/{call_sid}/caller", response_model=CallerProfile)
async def caller_profile(call_sid: CallSid, caller: CenterStaff) -> CallerProfile:
    """What the hotline knows of this call's number: earlier calls, texts and reports."""
    return await caller.run(calls_service.caller_profile, call_sid=call_sid)
