"""`GET /api/v1/dispatch/status`: is dispatch keeping up (the figures:
`dispatch.ops.status`)."""

from fastapi import APIRouter, Depends, Request

from channels.web import sessions
from db.engine import transaction
from dispatch.ops import status
from dispatch.ops.status import DispatchStatus
from dispatch.staff.permissions import DISPATCH_STATUS, requires

router = APIRouter(prefix="/api/v1/dispatch", tags=["dispatch"])


@router.get(
    "/status",
    response_model=DispatchStatus,
    dependencies=[Depends(requires(DISPATCH_STATUS))],  # figures only, no case data
)
async def dispatch_status(request: Request) -> DispatchStatus:
    runtime = request.app.state.runtime
    async with transaction(sessions(request)) as session:
        return await status.dispatch_status(
            session=session, settings=runtime.settings, redis_url=runtime.redis_url
        )
