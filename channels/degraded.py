"""Degraded but honest: what each channel answers while the database is down.

Nothing can be stored, so nothing may pretend to be: the JSON API answers 503 in the
contract's shape, the web form a Chinese page with the hotline's number and 110, and
Twilio's webhooks TwiML that needs no database (a caller hears where to turn instead of
Twilio's generic error; with HOTLINE_BACKUP_NUMBER the call is put through to it). The same
TwiML is served at the Twilio fallback URLs (`channels.twilio.fallback`).
"""

import errno
import socket
from pathlib import Path

import asyncpg
import sqlalchemy.exc
from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import Response
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from workflows import config

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

_CONNECT_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ETIMEDOUT,
    errno.ENOENT,  # a unix socket (the embedded server's) that is gone
    errno.EPIPE,
}
# asyncpg's own words for "the server is not there (any more)".
_ASYNCPG_DOWN = (
    asyncpg.exceptions.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.exceptions.CannotConnectNowError,  # starting up or shutting down
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.TooManyConnectionsError,
)


def _one_says_down(exc: BaseException) -> bool:
    if isinstance(exc, _ASYNCPG_DOWN):
        return True
    if isinstance(exc, asyncpg.exceptions.InterfaceError):
        return "connection is closed" in str(exc) or "connection was closed" in str(exc)
    if isinstance(exc, sqlalchemy.exc.TimeoutError):  # no pooled connection came free
        return True
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, ConnectionError | socket.gaierror | TimeoutError):
        return True
    return isinstance(exc, OSError) and exc.errno in _CONNECT_ERRNOS


def database_down(exc: BaseException) -> bool:
    """Did this failure come from the database being unreachable? (anywhere in its chain)"""
    seen: BaseException | None = exc
    for _ in range(20):
        if seen is None:
            return False
        if _one_says_down(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def message(key: str) -> str:
    channels = config.channels()
    hotline = channels.hotline
    return getattr(channels.degraded, key).format(name=hotline.name, number=hotline.number)


def api_error() -> tuple[int, str, str]:
    """(status, code, message) of the JSON API's answer."""
    return 503, "database_unavailable", message("api")


def _xml(document: VoiceResponse | MessagingResponse) -> Response:
    return Response(document.to_xml(), media_type="application/xml")


def voice_twiml(backup_number: str | None) -> Response:
    """Spoken in the configured Chinese voice; then the backup line, if there is one."""
    voice = config.channels().voice
    answer = VoiceResponse()
    speak = {"language": voice.language, "voice": voice.voice or None}
    if backup_number:
        answer.say(message("voice_dial"), **speak)
        answer.dial(backup_number)
    answer.say(message("voice"), **speak)
    answer.hangup()
    return _xml(answer)


def sms_twiml() -> Response:
    answer = MessagingResponse()
    answer.message(message("sms"))
    return _xml(answer)


def web_page(request: Request) -> Response:
    hotline = config.channels().hotline
    return templates.TemplateResponse(
        request,
        "unavailable.html",
        {
            "title": message("web_title"),
            "text": message("web"),
            "number": hotline.number,
            "name": hotline.name,
        },
        status_code=503,
        headers={"Retry-After": "30"},
    )


def backup_number(request: Request) -> str | None:
    runtime = getattr(request.app.state, "runtime", None)
    return getattr(getattr(runtime, "settings", None), "hotline_backup_number", None)


def answer_for(request: Request) -> Response | None:
    """The channel's own degraded answer for this path, or None for the JSON 503."""
    path = request.url.path
    if path == "/report":
        return web_page(request)
    if path.startswith("/channels/twilio/voice"):
        return voice_twiml(backup_number(request))
    if path in ("/channels/twilio/sms", "/channels/twilio/sms/fallback"):
        return sms_twiml()
    return None
