"""The liaisons' console: their department's referrals in their jurisdiction (and below),
the time left on each deadline, and claiming, progress notes, completion and return.

Every action is the referral service the staff API calls too (`dispatch.referrals.service`):
one winner per claim, only the claimant may act, the outcome or the reason required, all
audited.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import aliased
from starlette.datastructures import FormData

from channels.web import client_ip, sessions
from db.models import Case, Referral
from dispatch.cases import service as cases
from dispatch.console import web
from dispatch.referrals import service as referrals
from dispatch.referrals.service import OPEN
from dispatch.staff.audit import audit
from dispatch.staff.auth import runtime_of
from dispatch.staff.permissions import REFERRAL_CLAIM, REFERRAL_READ
from dispatch.staff.scope import referral_filter
from workflows.errors import NotFound

router = APIRouter(prefix="/console", route_class=web.ConsoleRoute, include_in_schema=False)

LIAISON = web.staff(REFERRAL_CLAIM)
REFERRAL_READERS = web.staff(REFERRAL_READ)


def running_deadline(referral: Referral) -> datetime | None:
    """The deadline that runs now: claiming while queued, a first action once claimed, the
    help plan's due date while in progress."""
    if referral.status == "queued":
        return referral.claim_due_at
    if referral.status == "claimed":
        return referral.action_due_at
    return referral.plan_due_at if referral.status == "in_progress" else None


@dataclass(frozen=True)
class QueueItem:
    referral: Referral
    case: Case

    @property
    def due_at(self) -> datetime | None:
        return running_deadline(self.referral)


async def open_referrals(session, principal) -> list[QueueItem]:
    """Open referrals the person may see, the most urgent deadline first."""
    case = aliased(Case)  # not `Case`: the scope filter's own subquery on it must not correlate
    rows = await session.execute(
        select(Referral, case)
        .join(case, case.id == Referral.case_id)
        .where(Referral.status.in_(OPEN), Referral.status != "unrouted", referral_filter(principal))
        .order_by(Referral.claim_due_at.asc().nulls_last(), Referral.id)
        .limit(300)
    )
    return [QueueItem(r, c) for r, c in rows.all()]


@router.get("/liaison", response_class=HTMLResponse)
async def queue(request: Request, user: Annotated[web.ConsoleUser, Depends(LIAISON)]):
    me = user.principal
    async with sessions(request)() as session, session.begin():
        items = await open_referrals(session, me)
        web.audit_list(session, me, request, "referral", [i.case.id for i in items])
    return web.render(
        request,
        user,
        "liaison.html",
        {
            "queued": [i for i in items if i.referral.status == "queued"],
            "mine": [i for i in items if i.referral.claimed_by == me.id],
            "others": [
                i for i in items if i.referral.status != "queued" and i.referral.claimed_by != me.id
            ],
        },
    )


@router.get("/referrals/{referral_id}", response_class=HTMLResponse)
async def referral_page(
    request: Request, referral_id: int, user: Annotated[web.ConsoleUser, Depends(REFERRAL_READERS)]
):
    principal = user.principal
    async with sessions(request)() as session, session.begin():
        referral = (
            await session.execute(
                select(Referral).where(Referral.id == referral_id, referral_filter(principal))
            )
        ).scalar_one_or_none()
        if referral is None:
            raise NotFound("referral_not_found", "未找到该转介")
        audit(session, principal, "referral.read", "referral", referral.id, request)
    try:
        detail = await web.as_user(request, user, cases.get_case, case_id=referral.case_id)
    except NotFound:
        # Returned, cancelled or withdrawn: the department keeps its own row, not the case
        # (`dispatch.staff.scope.case_filter`). The liaison lands here right after a return.
        detail = None
    mine = referral.claimed_by == principal.id and referral.status in ("claimed", "in_progress")
    return web.render(
        request,
        user,
        "referral.html",
        {
            "r": referral,
            "c": detail,
            "can_claim": principal.role == "liaison" and referral.status == "queued",
            "can_work": principal.role == "liaison" and mine,
            "due_at": running_deadline(referral),
        },
    )


def _back(referral_id: int) -> str:
    return f"/console/referrals/{referral_id}"


@router.post("/referrals/{referral_id}/claim")
async def claim(
    request: Request, referral_id: int, user: Annotated[web.ConsoleUser, Depends(LIAISON)]
) -> RedirectResponse:
    await web.read_form(request, user)

    async def run() -> None:
        await referrals.claim_referral(
            engine=runtime_of(request).engine,
            principal=user.principal,
            ip=client_ip(request),
            referral_id=referral_id,
        )

    return await web.act(request, user, _back(referral_id), run, "认领成功，请尽快开始办理")


# A liaison's actions from the referral's form: the one text each takes (checked by the API's
# body model, cut to its limit) and what the page says once done.
ACTIONS = {
    "progress": (referrals.NoteIn, "note", 5000, "进展已记录"),
    "complete": (referrals.OutcomeIn, "outcome", 5000, "已办结"),
    "return": (referrals.ReasonIn, "reason", 2000, "已退回未保中心重新指派"),
}


def _action(event: str) -> Callable[..., Awaitable[RedirectResponse]]:
    """The endpoint of one liaison action (progress, complete, return) on the referral."""
    model, name, limit, done = ACTIONS[event]

    def fields(form: FormData) -> dict:
        return {"event": event, "note": getattr(model(**web.texts(form, **{name: limit})), name)}

    async def post(
        request: Request, referral_id: int, user: Annotated[web.ConsoleUser, Depends(LIAISON)]
    ) -> RedirectResponse:
        back = _back(referral_id)
        return await web.submit(
            request, user, back, referrals.record_action, done, fields, referral_id=referral_id
        )

    return post


for _event in ACTIONS:
    router.post(f"/referrals/{{referral_id}}/{_event}")(_action(_event))
