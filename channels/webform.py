"""The mandatory reporters' channel: the HTML form at /report and its JSON twin.

Both validate with the same model (`workflows.cases.intake.ReportIn`) and store through the same
`record_report`; the HTML side adds CSRF protection and re-shows the form with the
reporter's input and a Chinese message next to each wrong field. Both are limited per client
address and per content, and hold a burst of repeats for an operator
(`channels.webform_limits`): over a limit the API answers 429 and the form a page with the
hotline's number, never a bare refusal. A proof of work (`channels.proof`; the form's script,
or `X-Hotline-Proof` on the API with a challenge from `GET /api/v1/reports/challenge`) moves a
report to a larger per-address allowance.
"""

import secrets
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from channels.errors import ApiError, declared
from channels.web import client_ip, database_answers, json_only, secret_key, sessions
from channels.webform_limits import PROOF_MAX_AGE, IntakeLimited, challenge, hotline, throttle
from workflows.cases import receipts
from workflows.cases.intake import (
    IntakeResult,
    ReportIn,
    field_errors,
    from_report_in,
    record_report,
)
from workflows.reference import (
    category_labels,
    gender_labels,
    jurisdictions,
    reporter_role_labels,
    situation_labels,
)

router = APIRouter(tags=["public"])
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

CSRF_COOKIE = "hotline_csrf"
CSRF_MAX_AGE = 4 * 3600


class ReportCreated(BaseModel):
    receipt_code: str
    report_id: int
    case_id: int


class Challenge(BaseModel):
    challenge: str
    bits: int
    expires_in: int


async def _store(request: Request, body: ReportIn, proof: str | None = None) -> IntakeResult:
    """Limited first (IntakeLimited), then stored; a repeat of a recent report is held."""
    new = from_report_in(body)
    new.actor = "webform"
    new.ip = client_ip(request)
    await throttle(request, new, proof)
    hold = request.app.state.runtime.settings.hotline_intake_hold_seconds
    async with sessions(request)() as session, session.begin():
        return await record_report(session, new, hold_seconds=hold)


@router.post(
    "/api/v1/reports",
    status_code=201,
    response_model=ReportCreated,
    dependencies=[Depends(json_only)],
    responses=declared(429),
)
async def create_report(
    request: Request,
    body: ReportIn,
    proof: Annotated[
        str | None,
        Header(
            alias="X-Hotline-Proof",
            max_length=200,
            description="工作量证明（可选）：`challenge:solution`，challenge 取自 "
            "GET /api/v1/reports/challenge，solution 为使 SHA-256(challenge:solution) "
            "前 bits 位为 0 的十进制数；有效且未用过时按较宽的同地址限额计数",
        ),
    ] = None,
) -> ReportCreated:
    """A mandatory report as JSON. A repeat of the same report within seconds is one report;
    a repeat of its content within the hold window is stored on the first one's case and
    held for an operator (the answer names that case). Too many reports from one address,
    or of one content, are answered 429 with Retry-After and the hotline's number; a proof
    of work (`X-Hotline-Proof`) counts against a larger per-address allowance."""
    result = await _store(request, body, proof)
    return ReportCreated(
        receipt_code=receipts.display(result.receipt_code),
        report_id=result.report_id,
        case_id=result.case_id,
    )


@router.get("/api/v1/reports/challenge", response_model=Challenge, responses=declared(404))
async def report_challenge(request: Request) -> Challenge:
    """A proof-of-work challenge for `X-Hotline-Proof` (single use, good for four hours);
    404 when the deployment offers none."""
    issued = challenge(request)
    if issued is None:
        raise ApiError(404, "proof_not_offered", "本服务未启用工作量证明")
    bits = int(issued.split(".")[3])
    return Challenge(challenge=issued, bits=bits, expires_in=PROOF_MAX_AGE)


# ---- HTML form -------------------------------------------------------------------------


def _csrf(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key(request), salt="report-form")


def _choices() -> dict[str, Any]:
    return {
        "roles": reporter_role_labels(),
        "situations": situation_labels(),
        "categories": category_labels(),
        "genders": gender_labels(),
        "jurisdictions": [(c, n, lvl) for c, n, lvl, _ in jurisdictions()],
    }


def _render(
    request: Request,
    *,
    values: dict[str, Any],
    errors: dict[str, str],
    nonce: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    nonce = nonce or secrets.token_urlsafe(16)
    response = templates.TemplateResponse(
        request,
        "report_form.html",
        {
            "v": values,
            "errors": errors,
            "csrf_token": _csrf(request).dumps(nonce),
            "pow_challenge": challenge(request),
            **_choices(),
        },
        status_code=status,
    )
    response.set_cookie(
        CSRF_COOKIE, nonce, max_age=CSRF_MAX_AGE, httponly=True, samesite="strict", path="/report"
    )
    return response


@router.get(
    "/report",
    response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[Depends(database_answers)],
)
async def report_form(request: Request) -> HTMLResponse:
    return _render(request, values={"situations": [], "categories": []}, errors={})


def _form_values(form: FormData) -> dict[str, Any]:
    """The form's fields as the user typed them (kept for re-showing the form)."""
    keys = (
        "reporter_name",
        "reporter_unit",
        "reporter_role",
        "reporter_phone",
        "reporter_no_contact",
        "reporter_sms_consent",
        "child_name",
        "child_age",
        "child_gender",
        "child_address",
        "jurisdiction",
        "description",
        "in_danger_now",
    )
    values: dict[str, Any] = {k: str(form.get(k, ""))[:6000] for k in keys}
    values["situations"] = [str(s) for s in form.getlist("situations")][:20]
    values["categories"] = [str(c) for c in form.getlist("categories")][:20]
    return values


def _as_report(values: dict[str, Any]) -> dict[str, Any]:
    """Form values in the JSON body's shape; blanks are 'not known'."""

    def opt(key: str) -> str | None:
        return values[key].strip() or None

    return {
        "reporter": {
            "name": opt("reporter_name"),
            "unit": opt("reporter_unit"),
            "role": opt("reporter_role"),
            "phone": opt("reporter_phone"),
            "no_contact": True if values["reporter_no_contact"] == "yes" else None,
            "sms_consent": True if values["reporter_sms_consent"] == "yes" else None,
        },
        "situations": values["situations"],
        "categories": values["categories"],
        "child": {
            "name": opt("child_name"),
            "age": opt("child_age"),
            "gender": opt("child_gender"),
            "address": opt("child_address"),
        },
        "jurisdiction": opt("jurisdiction"),
        "description": values["description"].strip(),
        "in_danger_now": values["in_danger_now"] == "yes",
    }


@router.post("/report", response_class=HTMLResponse, include_in_schema=False)
async def submit_report_form(request: Request) -> HTMLResponse:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        raise ApiError(415)
    form = await request.form(max_files=0, max_fields=100)
    values = _form_values(form)
    nonce = request.cookies.get(CSRF_COOKIE)
    try:
        signed = _csrf(request).loads(str(form.get("csrf_token", "")), max_age=CSRF_MAX_AGE)
    except BadSignature:
        signed = None
    if not nonce or signed != nonce:
        errors = {"form": "页面已过期或来源无法验证，请检查内容后重新提交"}
        return _render(request, values=values, errors=errors, status=400)
    try:
        body = ReportIn.model_validate(_as_report(values))
    except ValidationError as exc:
        errors = field_errors(exc)
        return _render(request, values=values, errors=errors, nonce=nonce, status=422)
    try:
        result = await _store(request, body, _form_proof(form))
    except IntakeLimited as limited:
        return _limited_page(request, limited, values)
    return templates.TemplateResponse(
        request,
        "report_done.html",
        {
            "receipt_code": receipts.display(result.receipt_code),
            "emergency": body.in_danger_now,
            "held": result.held,
        },
        status_code=201,
    )


def _form_proof(form: FormData) -> str | None:
    """The form's proof of work, when its script found one before the reporter sent it."""
    challenge_text = str(form.get("pow_challenge", ""))[:200]
    solution = str(form.get("pow_solution", ""))[:12]
    return f"{challenge_text}:{solution}" if challenge_text and solution else None


def _limited_page(request: Request, limited: IntakeLimited, values: dict[str, Any]) -> HTMLResponse:
    """429 as a page: not saved, call 110 in danger, the hotline's number, when to try again;
    the reporter's own text shown back so it is not lost."""
    name, number = hotline()
    return templates.TemplateResponse(
        request,
        "report_limited.html",
        {
            "text": limited.message,
            "name": name,
            "number": number,
            "description": values.get("description", ""),
        },
        status_code=429,
        headers={"Retry-After": str(limited.retry_after)},
    )
