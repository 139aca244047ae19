"""Outbound notifications to staff: an SMS through Twilio when configured, else the log.

Nothing in `dispatch` knows Twilio: it hands a phone number and a text here. The log line
names the notification, never the number or the text.
"""

import asyncio
import logging

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from db.metrics import SMS
from db.settings import Settings

log = logging.getLogger("hotline.notify")


def twilio_configured(settings: Settings) -> bool:
    return bool(
        settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from_number
    )


def twilio_client(settings: Settings) -> Client:
    # A hung Twilio call must not hold a worker until the job timeout.
    client = Client(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        http_client=TwilioHttpClient(timeout=15),
    )
    if settings.twilio_api_base_url:
        client.api.base_url = settings.twilio_api_base_url.rstrip("/")
    return client


async def send_staff_sms(settings: Settings, phone: str | None, text: str, ref: str) -> str:
    """Returns the channel used: 'sms' or 'log'. Raises on a Twilio failure (job retries)."""
    if not phone or not twilio_configured(settings):
        log.info("notification %s recorded as sent-to-log", ref)
        SMS.labels("staff", "logged").inc()
        return "log"
    client = twilio_client(settings)
    try:
        await asyncio.to_thread(
            client.messages.create, to=phone, from_=settings.twilio_from_number, body=text
        )
    except Exception:
        SMS.labels("staff", "failed").inc()
        raise
    SMS.labels("staff", "sent").inc()
    return "sms"
