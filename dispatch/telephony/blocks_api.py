"""Blocking abusive callers: the center's supervisors only, always for a limited time,
always with a reason, audited. A blocked caller hears a short message (with 110 for
emergencies) instead of reaching the queue; the block ends by itself at its expiry or when
lifted.

Scoped like the other hotline records (`dispatch.telephony.scope`): a call is blocked only
if the supervisor may see the call; a number typed in (tied to no case, no place) only by
the city center's supervisors; blocks are listed and lifted by the office that made them
and by the city center."""

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from channels.callers import caller_number
from channels.web import json_only, sessions
from db import clock
from db.telephony import CallerBlock, VoiceCall
from dispatch.common.endpoints import RowId, acting
from dispatch.common.lookup import row_or_404, scalar_or_404
from dispatch.common.views import from_row
from dispatch.staff.audit import audit
from dispatch.staff.permissions import CALLER_BLOCK, requires
from dispatch.staff.scope import is_root
from dispatch.telephony.scope import block_filter, via_case
from workflows import config
from workflows.errors import Forbidden, Invalid
from workflows.phones import mask_phone

router = APIRouter(prefix="/api/v1/voice/blocks", tags=["voice"])
Supervisor = acting(requires(CALLER_BLOCK))


class BlockIn(BaseModel):
    """The number, or the call it called from (so nobody has to read the number out)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    phone: Annotated[str | None, Field(default=None, max_length=32)] = None
    call_sid: Annotated[str | None, Field(default=None, max_length=64)] = None
    hours: Annotated[int, Field(ge=1, le=24 * 365)]
    reason: Annotated[str, Field(min_length=1, max_length=500)]

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        normalized = caller_number(value)
        if normalized is None:
            raise ValueError("invalid phone")
        return normalized


class BlockOut(BaseModel):
    id: int
    phone: str  # masked
    reason: str
    created_by: int
    created_at: datetime
    expires_at: datetime
    lifted_at: datetime | None
    active: bool


class BlockList(BaseModel):
    items: list[BlockOut]


def _out(block: CallerBlock) -> BlockOut:
    return from_row(
        BlockOut,
        block,
        phone=mask_phone(block.phone),
        active=block.lifted_at is None and block.expires_at > clock.now(),
    )


@router.post("", status_code=201, response_model=BlockOut, dependencies=[Depends(json_only)])
async def block_caller(body: BlockIn, caller: Supervisor) -> BlockOut:
    """422 beyond the deployment's longest block (`max_block_hours`); 404 for an unknown
    call or one outside the supervisor's scope, 422 for a call whose number was withheld;
    403 for a number typed in by anyone but the city center."""
    request, principal = caller.request, caller.principal
    if (body.phone is None) == (body.call_sid is None):
        raise Invalid("phone_or_call_sid", "请提供要屏蔽的号码或来电编号（二选一）")
    if body.phone is not None and not is_root(principal):
        raise Forbidden(
            "city_center_only", "直接按号码屏蔽须由市级未保中心督导操作，请通过来电编号屏蔽"
        )
    limit = config.channels().voice.max_block_hours
    if body.hours > limit:
        raise Invalid("block_too_long", f"屏蔽时长不能超过{limit}小时")
    now = clock.now()
    async with sessions(request)() as session, session.begin():
        phone = body.phone
        if body.call_sid is not None:
            stmt = select(VoiceCall.phone).where(
                VoiceCall.call_sid == body.call_sid, via_case(VoiceCall.case_id, principal)
            )
            found = await row_or_404(session, stmt, "call_not_found", "未找到该来电")
            if found.phone is None:
                raise Invalid("number_withheld", "该来电未显示号码，无法屏蔽")
            phone = found.phone
        block = CallerBlock(
            phone=phone,
            reason=body.reason,
            created_by=principal.id,
            created_at=now,
            expires_at=now + timedelta(hours=body.hours),
        )
        session.add(block)
        await session.flush()
        audit(
            session, principal, "caller.block", "caller_block", block.id, request, {"h": body.hours}
        )
    return _out(block)


@router.get("", response_model=BlockList)
async def list_blocks(caller: Supervisor) -> BlockList:
    """Blocks in force now, of those the supervisor may manage."""
    request, principal = caller.request, caller.principal
    async with sessions(request)() as session, session.begin():
        blocks = (
            (
                await session.execute(
                    select(CallerBlock)
                    .where(
                        CallerBlock.lifted_at.is_(None),
                        CallerBlock.expires_at > clock.now(),
                        block_filter(principal),
                    )
                    .order_by(CallerBlock.expires_at)
                )
            )
            .scalars()
            .all()
        )
        audit(session, principal, "caller.block_list", "caller_block", None, request)
    return BlockList(items=[_out(b) for b in blocks])


@router.delete("/{block_id}", response_model=BlockOut)
async def lift_block(block_id: RowId, caller: Supervisor) -> BlockOut:
    """404 for a block the supervisor may not manage, as for one that does not exist."""
    request, principal = caller.request, caller.principal
    async with sessions(request)() as session, session.begin():
        stmt = select(CallerBlock).where(CallerBlock.id == block_id, block_filter(principal))
        block = await scalar_or_404(
            session, stmt.with_for_update(), "block_not_found", "未找到该屏蔽记录"
        )
        if block.lifted_at is None:
            block.lifted_at, block.lifted_by = clock.now(), principal.id
            audit(session, principal, "caller.unblock", "caller_block", block.id, request)
    return _out(block)
