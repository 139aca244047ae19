"""The interactive API docs (Swagger UI), for signed-in staff only.

The schema itself (`/openapi.json`) stays public: the contract (spec api.md) makes it part
of the product that partners and checks read. What is kept from strangers is the browsable
page listing every staff endpoint. The page lives under /console, where the console's
session cookie is sent; `/docs` shows it to a bearer token's holder, and sends anyone else
there (and so, unsigned, to the sign-in). Swagger UI's files come from the
`fastapi-swagger` wheel, served by us: no CDN, nothing fetched from elsewhere, and no
inline script (the start-up is `/static/console/api-docs.js`).
"""

from pathlib import Path
from typing import Annotated

import fastapi_swagger
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from dispatch.console.login import SIGNED_IN
from dispatch.console.web import ConsoleRoute, ConsoleUser, see_other
from dispatch.staff import auth

SWAGGER_PATH = "/static/swagger-ui"
# The `fastapi-swagger` wheel's copy of Swagger UI 5 (OpenAPI 3.1, which FastAPI writes);
# only its files are used, not its plugin.
SWAGGER_DIR = Path(fastapi_swagger.__file__).resolve().parent / "resources"
PAGE_PATH = "/console/api-docs"

PAGE = f"""<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>未保热线 API 文档</title>
<link rel="stylesheet" href="{SWAGGER_PATH}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="/openapi.json"></div>
<script src="{SWAGGER_PATH}/swagger-ui-bundle.js"></script>
<script src="/static/console/api-docs.js"></script>
</body>
</html>
"""

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
public = APIRouter(include_in_schema=False)


@router.get("/api-docs", response_class=HTMLResponse)
async def docs_page(user: Annotated[ConsoleUser, Depends(SIGNED_IN)]) -> HTMLResponse:
    return HTMLResponse(PAGE)


@public.get("/docs", response_class=HTMLResponse)
async def docs(request: Request) -> Response:
    """A valid bearer token sees the page here; a browser is sent to the console's."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        if await auth.principal_from_token(auth.runtime_of(request), token.strip()):
            return HTMLResponse(PAGE)
    return see_other(PAGE_PATH)
