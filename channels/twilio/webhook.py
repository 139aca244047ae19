"""What every Twilio webhook shares: the signature check, public URLs, TwiML answers.

Twilio signs the URL it called plus the sorted POST parameters with the account's auth
token (X-Twilio-Signature, HMAC-SHA1). Behind a proxy the request's own URL is not the one
Twilio called, so the URL is rebuilt from HOTLINE_PUBLIC_URL. Nothing is read from a
request, let alone stored, before its signature is proven.
"""

import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData
from twilio.request_validator import SIGNATURE_HEADER, RequestValidator
from twilio.twiml import TwiML
from twilio.twiml.voice_response import Gather, VoiceResponse

from channels.errors import ApiError
from db.settings import Settings
from workflows import config

log = logging.getLogger("hotline.twilio")

_BAD_SIGNATURE = ApiError(403, "invalid_signature", "请求签名无效")


def public_url(settings: Settings, path: str) -> str:
    """An absolute URL Twilio can reach (webhook actions, status callbacks)."""
    if not settings.hotline_public_url:
        raise ValueError("HOTLINE_PUBLIC_URL is not set")
    return settings.hotline_public_url.rstrip("/") + path


async def twilio_form(request: Request) -> FormData:
    """Dependency: the webhook's parameters, once the signature is proven.

    No signature is 403 whatever the configuration (the request is not Twilio's); a
    signature that cannot be checked, for want of HOTLINE_PUBLIC_URL or the auth token, is
    503 rather than accepted unchecked.
    """
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        raise _BAD_SIGNATURE
    settings: Settings = request.app.state.runtime.settings
    if not settings.hotline_public_url or not settings.twilio_auth_token:
        log.error("twilio webhook refused: HOTLINE_PUBLIC_URL or TWILIO_AUTH_TOKEN is not set")
        raise ApiError(503, "twilio_not_configured", "短信和电话通道尚未配置，暂时无法受理")
    form = await request.form(max_files=0, max_fields=100)
    url = public_url(settings, request.url.path)
    if request.url.query:
        url += "?" + request.url.query
    if not RequestValidator(settings.twilio_auth_token).validate(url, form, signature):
        log.warning("twilio webhook with a bad signature on %s", request.url.path)
        raise _BAD_SIGNATURE
    return form


# A webhook's parameters, signature proven (the dependency every Twilio route takes).
SignedForm = Annotated[FormData, Depends(twilio_form)]


def required(form: FormData, name: str, max_length: int = 64) -> str:
    """A parameter Twilio always sends; its absence means a malformed (if signed) request."""
    value = str(form.get(name) or "").strip()
    if not value or len(value) > max_length:
        raise ApiError(400, "missing_parameter", "缺少必要的参数")
    return value


def seconds(form: FormData, name: str) -> int:
    """A non-negative whole number of seconds (0 when absent or unreadable)."""
    value = str(form.get(name) or "")
    return int(value) if value.isdigit() and len(value) < 7 else 0


def twiml(document: TwiML) -> Response:
    return Response(content=document.to_xml(), media_type="application/xml")


def say(node: VoiceResponse | Gather, text: str) -> None:
    """Chinese speech in the configured voice."""
    voice = config.channels().voice
    node.say(text, language=voice.language, voice=voice.voice or None)


def form_body(*fields: str, description: str) -> dict[str, Any]:
    """OpenAPI for a Twilio webhook: a signed form body, answered with TwiML (or nothing)."""
    properties = {name: {"type": "string"} for name in fields}
    return {
        "description": description
        + "\n\nSigned by Twilio: `X-Twilio-Signature` over HOTLINE_PUBLIC_URL + path (+ query)"
        " and the sorted form parameters. Missing or wrong: 403. Not configured: 503.",
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": properties}
                }
            },
        },
    }


TWIML_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"description": "TwiML", "content": {"application/xml": {"schema": {"type": "string"}}}}
}


def twiml_route(router: APIRouter, path: str, *fields: str, description: str) -> Callable:
    """A webhook Twilio posts a signed form to and that answers TwiML: the route, with what
    the OpenAPI says of its form (`fields`) and of its answer."""
    return router.post(
        path,
        response_class=Response,
        responses=TWIML_RESPONSE,
        openapi_extra=form_body(*fields, description=description),
    )
