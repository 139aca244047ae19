"""The public front door: a landing page at `/` that says where to go, and a receipt
lookup page for people who do not call JSON APIs. Both are plain server-rendered HTML."""

from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from channels.receipts import PUBLIC_STATUS_LABELS, look_up
from channels.webform import templates
from workflows import config
from workflows.errors import DomainError

router = APIRouter(tags=["public"])

# The public pages' style sheet (templates/base.html): a file, as the CSP wants.
STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PATH = "/static/public"


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def landing(request: Request) -> HTMLResponse:
    """A newcomer's first page: the form, the receipt lookup, the console and the API docs."""
    return templates.TemplateResponse(request, "landing.html", {})


@router.get("/receipt", response_class=HTMLResponse, include_in_schema=False)
async def receipt_page(request: Request, code: str = "") -> HTMLResponse:
    """The JSON lookup as a form: the same rate limit and the same answer (status and time
    only), so the page is no easier a door for guessers than the API."""
    context: dict = {"code": code[:40]}
    status = 200
    if code.strip():
        try:
            found = await look_up(request, code)
        except DomainError as err:  # not found, mistyped, or too many lookups (429)
            context["error"] = err.message
            status = err.status
            return templates.TemplateResponse(
                request, "receipt.html", context, status_code=status,
                headers=getattr(err, "headers", None),
            )
        zone = ZoneInfo(config.risk().timezone)
        context.update(
            receipt_code=found.receipt_code,
            status_label=PUBLIC_STATUS_LABELS.get(found.status, "已受理"),
            updated=found.updated_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        )
    return templates.TemplateResponse(request, "receipt.html", context, status_code=status)
