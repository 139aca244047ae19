"""All console pages, for the application factory to include in one go, and the folder of
their script and style sheet (served as static files)."""

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from dispatch.children import pages as children_pages
from dispatch.console import (
    accounts,
    admin,
    api_docs,
    audit_log,
    board,
    casework,
    casework_pages,
    liaison,
    login,
    operator,
    partners,
    quarterly,
    sms,
    stats,
)
from dispatch.console.login import SIGNED_IN
from dispatch.console.web import ConsoleRoute, ConsoleUser
from dispatch.supervision import pages as supervision_pages
from workflows.errors import NotFound

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
STATIC_PATH = "/static/console"

router = APIRouter()
for module in (
    login,
    api_docs,
    operator,
    sms,
    casework,
    casework_pages,
    liaison,
    board,
    stats,
    quarterly,
    audit_log,
    admin,
    accounts,
    partners,
    children_pages,
    supervision_pages,
):
    router.include_router(module.router)
router.include_router(api_docs.public)  # /docs

_fallback = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


@_fallback.get("/{rest:path}", response_class=HTMLResponse)
async def not_found(rest: str, user: Annotated[ConsoleUser, Depends(SIGNED_IN)]):
    """Any other console address: the friendly 404 page, after sign-in (nothing about the
    console's layout shows to strangers)."""
    raise NotFound("page_not_found", "没有这个页面")


router.include_router(_fallback)
