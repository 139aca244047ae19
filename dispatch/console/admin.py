"""The administrators' page: whether dispatch keeps up (figures only, no case data; the
same numbers as the dispatch status API) and the way to the audit log and the accounts
page (dispatch.console.accounts; also `hotline user`)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from channels.web import sessions
from db.engine import transaction
from dispatch.console.web import ConsoleRoute, ConsoleUser, render, staff
from dispatch.ops.status import dispatch_status
from dispatch.staff.permissions import ADMINISTRATION

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

ADMIN = staff(ADMINISTRATION)


@router.get("/admin", response_class=HTMLResponse)
async def admin_home(request: Request, user: Annotated[ConsoleUser, Depends(ADMIN)]):
    runtime = request.app.state.runtime
    async with transaction(sessions(request)) as session:
        status = await dispatch_status(
            session=session, settings=runtime.settings, redis_url=runtime.redis_url
        )
    return render(request, user, "admin.html", {"status": status})
