"""Twilio Messaging webhooks: inbound SMS (answered with TwiML) and delivery status
callbacks for staff replies. Both are signed; see `channels.twilio.webhook`."""

import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData
from twilio.twiml.messaging_response import MessagingResponse

from channels.callers import caller_number, sender_key
from channels.sms.inbound import InboundSms, receive
from channels.sms.outbound import STATUS_PATH, record_delivery
from channels.twilio.webhook import (
    SignedForm,
    form_body,
    required,
    twiml,
    twiml_route,
)
from channels.web import client_ip, sessions
from workflows.phones import mask_phone

log = logging.getLogger("hotline.sms")

router = APIRouter(tags=["twilio"])
MAX_MEDIA = 10


def _media(form: FormData) -> list[str]:
    count = str(form.get("NumMedia") or "0")
    wanted = min(int(count), MAX_MEDIA) if count.isdigit() else 0
    urls = (str(form.get(f"MediaUrl{i}") or "")[:400] for i in range(wanted))
    return [url for url in urls if url]


@twiml_route(
    router,
    "/channels/twilio/sms",
    "MessageSid", "From", "To", "Body", "NumMedia",
    description="Inbound SMS. A first message opens a report and is answered with its "
    "receipt code; later ones within the thread window join it; 退订/STOP, 开始/START and "
    "帮助/HELP are keywords. A retried MessageSid gets the same reply and creates nothing.",
)
async def inbound_sms(request: Request, form: SignedForm) -> Response:
    raw_sender = required(form, "From")
    sms = InboundSms(
        sid=required(form, "MessageSid"),
        sender=sender_key(raw_sender),
        reporter_phone=caller_number(raw_sender),
        body=str(form.get("Body") or "")[:5000],
        media=_media(form),
    )
    async with sessions(request)() as session, session.begin():
        reply = await receive(session, sms, ip=client_ip(request))
    log.info("sms %s from %s stored", sms.sid, mask_phone(sms.sender))
    answer = MessagingResponse()
    if reply:
        answer.message(reply)
    return twiml(answer)


@router.post(
    STATUS_PATH,
    status_code=204,
    response_class=Response,
    openapi_extra=form_body(
        "MessageSid",
        "MessageStatus",
        "ErrorCode",
        description="Delivery status of a staff reply (the URL carries `m`, our message id). "
        "A status never moves backwards.",
    ),
)
async def sms_status(request: Request, form: SignedForm) -> Response:
    message_id = request.query_params.get("m", "")
    async with sessions(request)() as session, session.begin():
        await record_delivery(
            session,
            message_id=int(message_id) if message_id.isdigit() and len(message_id) < 10 else None,
            sid=required(form, "MessageSid"),
            status=required(form, "MessageStatus", 20),
            error_code=str(form.get("ErrorCode") or "")[:10] or None,
        )
    return Response(status_code=204)
