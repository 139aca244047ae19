"""Outbound notifications to staff: an SMS through Twilio when configured, else the log.

Nothing in `dispatch` knows Twilio: it hands a phone number and a text here. The log line
names the notification, never the number or the text.
"""

import asyncio
import functools
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
    """One client per account and API address in a process: its HTTP session keeps the
    connection (and the TLS context) for the next message instead of a handshake each."""
    return _client(
        settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_api_base_url
    )


@functools.lru_cache(maxsize=8)
def _client(account_sid: str | None, auth_token: str | None, base_url: str | None) -> Client:
    # A hung Twilio call must not hold a worker until the job timeout.
    client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=15))
    if base_url:
        client.api.base_url = base_url.rstrip("/")
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
