"""Twilio Voice webhooks: the hotline's call flow, in TwiML.

    greeting ─ Gather 1 key ─┬─ open:   Enqueue emergency (key 1) or normal queue
                             │            └─ waited too long / queue trouble → voicemail
                             └─ closed:  voicemail (key 1: told to call 110 first)
    blocked number: a short message, then hang up.

Operators' consoles take callers with `/dequeue`, which dials the emergency queue whenever
anyone waits in it. A voicemail becomes a report with the recording linked, and a call-back
task; so does (without a report) a caller who pressed 1 or waited long and hung up.
All requests are signed (see `channels.twilio.webhook`) and idempotent per CallSid.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from channels.twilio.webhook import (
    SignedForm,
    form_body,
    public_url,
    required,
    say,
    seconds,
    twiml,
    twiml_route,
)
from channels.voice.calls import (
    BRIDGED,
    answered,
    call_for,
    choose,
    find_call,
    left_queue,
    max_wait,
    outcome_known,
    request_callback,
    save_voicemail,
    serve_first,
    update_status,
)
from channels.web import client_ip, sessions
from db import clock
from db.settings import Settings
from db.telephony import VoiceCall
from workflows import config
from workflows.config.schema import Voice
from workflows.phones import mask_phone
from workflows.telephony.channel_texts import text
from workflows.telephony.delivery_status import CALL_FINAL

log = logging.getLogger("hotline.voice")

BASE = "/channels/twilio/voice"
router = APIRouter(prefix=BASE, tags=["twilio"])
# Queue results that send the caller to voicemail instead of an operator.
NO_OPERATOR = ("leave", "queue-full", "error", "system-error")
_CALL = ("CallSid", "From", "To", "CallStatus")


def _url(request: Request, step: str) -> str:
    settings: Settings = request.app.state.runtime.settings
    return public_url(settings, f"{BASE}/{step}")


def _voice() -> Voice:
    return config.channels().voice


@asynccontextmanager
async def _this_call(
    request: Request, form: FormData, status: str | None = None
) -> AsyncIterator[tuple[AsyncSession, VoiceCall, datetime]]:
    """A transaction on the row of the call the form is about, locked (created at its first
    webhook), with the form's status, or `status` when the route has checked that already;
    the webhooks that keep a call's row all begin so (the session, the call, now)."""
    now = clock.now()
    raw_status = form.get("CallStatus") if status is None else status
    async with sessions(request)() as session, session.begin():
        call = await call_for(
            session, required(form, "CallSid"), form.get("From"), raw_status, now
        )
        yield session, call, now


def _goodbye(message: str) -> VoiceResponse:
    answer = VoiceResponse()
    say(answer, message)
    answer.hangup()
    return answer


def _voicemail(request: Request, prompt: str) -> VoiceResponse:
    answer = VoiceResponse()
    say(answer, prompt)
    answer.record(
        action=_url(request, "recording"),
        method="POST",
        max_length=_voice().voicemail_max_seconds,
        finish_on_key="#",
        play_beep=True,
        timeout=10,
    )
    say(answer, text("voice", "no_message"))
    answer.hangup()
    return answer


def _voicemail_prompt(call: VoiceCall, fallback: str) -> str:
    return text("voice", "voicemail_emergency" if call.menu_choice == "emergency" else fallback)


@twiml_route(
    router,
    "",
    *_CALL, description="An incoming call: the Chinese greeting and the one-key menu."
)
async def incoming_call(request: Request, form: SignedForm) -> Response:
    async with _this_call(request, form) as (_, call, _):
        pass  # the call's row, created at this first webhook, is committed
    log.info("call %s from %s: %s", call.call_sid, mask_phone(call.phone) or "-", call.route)
    if call.route == "blocked":
        return twiml(_goodbye(text("voice", "blocked")))
    answer = VoiceResponse()
    menu = Gather(
        num_digits=1,
        action=_url(request, "menu"),
        method="POST",
        timeout=_voice().menu_timeout_seconds,
    )
    say(menu, text("voice", "greeting_open" if call.route == "open" else "greeting_closed"))
    answer.append(menu)
    answer.redirect(_url(request, "menu"), method="POST")  # no key pressed: the normal way
    return twiml(answer)


@twiml_route(
    router,
    "/menu",
    *_CALL, "Digits", description="The menu key: 1 puts the caller in the emergency queue."
)
async def menu_choice(request: Request, form: SignedForm) -> Response:
    async with _this_call(request, form) as (_, call, now):
        choose(call, str(form.get("Digits") or "")[:1], now)
    if call.route == "blocked":
        return twiml(_goodbye(text("voice", "blocked")))
    if call.route == "closed":
        return twiml(_voicemail(request, _voicemail_prompt(call, "voicemail_closed")))
    answer = VoiceResponse()
    emergency = call.menu_choice == "emergency"
    say(answer, text("voice", "queue_emergency" if emergency else "queue_normal"))
    answer.enqueue(
        call.queue,
        wait_url=_url(request, "wait"),
        wait_url_method="POST",
        action=_url(request, "queue-exit"),
        method="POST",
    )
    return twiml(answer)


@twiml_route(
    router,
    "/wait",
    "CallSid", "QueueSid", "QueueTime", "QueuePosition",
    description="While the caller waits: the hold message, or <Leave> after the maximum "
    "wait (shorter for the emergency queue), which leads to voicemail.",
)
async def waiting(request: Request, form: SignedForm) -> Response:
    async with sessions(request)() as session, session.begin():
        call = await find_call(session, required(form, "CallSid"))
    waited = seconds(form, "QueueTime")
    answer = VoiceResponse()
    if call is None or waited >= max_wait(call):
        answer.leave()
        return twiml(answer)
    say(answer, text("voice", "hold"))
    answer.pause(length=max(1, min(_voice().hold_pause_seconds, max_wait(call) - waited)))
    return twiml(answer)


@twiml_route(
    router,
    "/queue-exit",
    "CallSid", "QueueResult", "QueueTime",
    description="The caller left the queue: answered, hung up (call-back if they pressed 1 "
    "or waited long), or no operator in time (voicemail).",
)
async def queue_exit(request: Request, form: SignedForm) -> Response:
    now = clock.now()
    result = required(form, "QueueResult", 30)
    waited = seconds(form, "QueueTime")
    async with sessions(request)() as session, session.begin():
        call = await find_call(session, required(form, "CallSid"))
        if call is not None:
            left_queue(call, result, waited, now)
            if result == "hangup":
                await request_callback(session, call, voicemail=False, waited=waited, now=now)
    if call is not None and result in NO_OPERATOR:
        return twiml(_voicemail(request, _voicemail_prompt(call, "voicemail_busy")))
    answer = VoiceResponse()
    if result in BRIDGED:
        answer.hangup()
    return twiml(answer)


@twiml_route(
    router,
    "/recording",
    "CallSid", "RecordingSid", "RecordingUrl", "RecordingDuration",
    description="A voicemail was recorded: it becomes a report with the recording linked, "
    "and a red call-back task.",
)
async def recording(request: Request, form: SignedForm) -> Response:
    recording_sid = str(form.get("RecordingSid") or "")[:64]
    recording_url = str(form.get("RecordingUrl") or "")[:400]
    length = seconds(form, "RecordingDuration")
    async with _this_call(request, form) as (session, call, now):
        heard = bool(recording_sid and recording_url and length > 0)
        if heard:
            await save_voicemail(
                session,
                call,
                recording_sid=recording_sid,
                recording_url=recording_url,
                recording_seconds=length,
                ip=client_ip(request),
                now=now,
            )
        await request_callback(
            session, call, voicemail=heard, waited=call.queue_seconds or 0, now=now
        )
    log.info("call %s voicemail %s", call.call_sid, "saved" if heard else "empty")
    return twiml(_goodbye(text("voice", "voicemail_thanks" if heard else "no_message")))


@router.post(
    "/status",
    status_code=204,
    response_class=Response,
    openapi_extra=form_body(
        *_CALL,
        "CallDuration",
        description="Call status callback (ringing, in-progress, completed, no-answer, ...) "
        "with the duration; a status never moves backwards.",
    ),
)
async def call_status(request: Request, form: SignedForm) -> Response:
    status = required(form, "CallStatus", 20)
    async with _this_call(request, form, status) as (session, call, now):
        changed = update_status(call, status, seconds(form, "CallDuration"), now)
        if changed and status in CALL_FINAL and outcome_known(call):
            await request_callback(
                session,
                call,
                voicemail=call.recording_sid is not None,
                waited=call.queue_seconds or 0,
                now=now,
            )
    return Response(status_code=204)


@twiml_route(
    router,
    "/dequeue",
    "CallSid", "From",
    description="The operator console's call (TwiML App): connects it to the next caller, "
    "from the emergency queue whenever anyone waits there.",
)
async def dequeue(request: Request, form: SignedForm) -> Response:
    async with sessions(request)() as session:
        name = await serve_first(session)
    answer = VoiceResponse()
    dial = Dial()
    dial.queue(name, url=_url(request, "connect"), method="POST")
    answer.append(dial)
    return twiml(answer)


@twiml_route(
    router,
    "/connect",
    "CallSid", "QueueTime", "DequeingCallSid",
    description="Played to the caller as an operator takes the call; marks it answered.",
)
async def connect(request: Request, form: SignedForm) -> Response:
    now = clock.now()
    async with sessions(request)() as session, session.begin():
        call = await find_call(session, required(form, "CallSid"))
        if call is not None:
            answered(call, seconds(form, "QueueTime"), now)
    answer = VoiceResponse()
    say(answer, text("voice", "connect"))
    return twiml(answer)
