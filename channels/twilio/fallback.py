"""Twilio fallback URLs: what Twilio calls when our webhook fails or times out.

Configured in the Twilio console as the number's voice and messaging *fallback* URLs, they
answer the same TwiML as the degraded webhooks (call 110, the hotline's number, or the
backup line) and touch no database, so they work while the database (or the whole primary
path) is down. Signed like every webhook: the signature check needs no database either.
"""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from channels import degraded
from channels.twilio.webhook import SignedForm, twiml_route

router = APIRouter(tags=["twilio"])


@twiml_route(
    router,
    "/channels/twilio/voice/fallback",
    "CallSid", "From", "To", "ErrorCode",
    description="Voice fallback URL: a spoken Chinese message giving 110 and the hotline's "
    "number (or a dial to HOTLINE_BACKUP_NUMBER). Needs no database.",
)
async def voice_fallback(request: Request, form: SignedForm) -> Response:
    return degraded.voice_twiml(degraded.backup_number(request))


@twiml_route(
    router,
    "/channels/twilio/sms/fallback",
    "MessageSid", "From", "To", "Body", "ErrorCode",
    description="Messaging fallback URL: a reply giving 110 and the hotline's number. "
    "Needs no database (the message itself is not stored).",
)
async def sms_fallback(request: Request, form: SignedForm) -> Response:
    return degraded.sms_twiml()
