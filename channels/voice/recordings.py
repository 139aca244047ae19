"""Voicemail audio for staff: fetched from Twilio with the account's credentials (Twilio's
media URLs can require them) so operators listen in the console without a Twilio login.

Only URLs on the Twilio API host are fetched: the URL came in a signed webhook, but the
service must never be turned into a fetcher of arbitrary addresses.
"""

import asyncio

import httpx
from twilio.base.exceptions import TwilioRestException

from channels.errors import ApiError
from channels.sms.staff import twilio_client
from db.settings import Settings

TWILIO_API = "https://api.twilio.com"
MAX_BYTES = 20 * 1024 * 1024
_UNAVAILABLE = ApiError(503, "recording_unavailable", "录音暂时无法获取，请稍后再试")


async def fetch_recording(settings: Settings, url: str) -> bytes:
    """The recording as MP3."""
    base = (settings.twilio_api_base_url or TWILIO_API).rstrip("/") + "/"
    if not url.startswith(base):
        raise ApiError(404, "recording_not_found", "未找到该录音")
    if not settings.twilio_account_sid or not settings.twilio_auth_token:
        raise _UNAVAILABLE
    auth = (settings.twilio_account_sid, settings.twilio_auth_token)
    try:
        async with httpx.AsyncClient(timeout=20, auth=auth) as client:
            response = await client.get(url.removesuffix(".mp3") + ".mp3")
    except httpx.HTTPError as exc:
        raise _UNAVAILABLE from exc
    if response.status_code != 200 or len(response.content) > MAX_BYTES:
        raise _UNAVAILABLE
    return response.content


async def delete_recording(settings: Settings, sid: str) -> None:
    """Delete a recording at Twilio (the retention job): the audio must not outlive its
    period in Twilio's storage either. One already gone (404) counts as deleted, so a
    run that stopped half-way can be run again; any other failure raises."""
    if not settings.twilio_account_sid or not settings.twilio_auth_token:
        raise _UNAVAILABLE
    client = twilio_client(settings)
    try:
        await asyncio.to_thread(client.recordings(sid).delete)
    except TwilioRestException as exc:
        if exc.status != 404:
            raise
