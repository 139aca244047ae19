"""Receipt lookup: the holder of a code sees the status and its time, and nothing else."""

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import select

from channels.errors import declared
from channels.ratelimit import record_miss, refuse_if_over
from channels.web import client_ip, sessions
from db.models import Case, Report
from workflows.cases import receipts
from workflows.errors import NotFound

router = APIRouter(tags=["public"])

# Internal states folded into what a reporter may know.
PUBLIC_STATUS = {
    "discovered": "received",
    "reported": "received",
    "assessing": "assessing",
    "handling": "handling",
    "following_up": "following_up",
    "closed": "closed",
    "merged": "closed",
    "invalid": "not_accepted",
}
PUBLIC_STATUS_LABELS = {
    "received": "已受理",
    "assessing": "评估中",
    "handling": "处置中",
    "following_up": "跟踪回访中",
    "closed": "已办结",
    "not_accepted": "不予受理",
}


MISSES_PER_MINUTE = 20


class ReceiptOut(BaseModel):
    receipt_code: str
    status: str
    updated_at: datetime


_NOT_FOUND = NotFound("receipt_not_found", "未找到该回执编号，请核对后重试")
_MISTYPED = NotFound("receipt_invalid", "回执编号有误，请核对后重试（可能有字符输错）")


@router.get(
    "/api/v1/receipts/{receipt_code}", response_model=ReceiptOut, responses=declared(429)
)
async def receipt_status(request: Request, receipt_code: str) -> ReceiptOut:
    """Misses are limited per client address: codes are unguessable only while guessing
    is slow."""
    return await look_up(request, receipt_code)


async def look_up(request: Request, receipt_code: str) -> ReceiptOut:
    """The one lookup behind the JSON answer and the HTML page, with one miss counter."""
    who = client_ip(request) or "-"
    await refuse_if_over(request, "receipt", who, MISSES_PER_MINUTE, 60)
    code = receipts.normalize(receipt_code[:40])
    if code is None:
        await record_miss(request, "receipt", who, MISSES_PER_MINUTE, 60)
        raise _MISTYPED
    async with sessions(request)() as session:
        row = (
            await session.execute(
                select(Case.state, Case.updated_at)
                .join(Report, Report.case_id == Case.id)
                .where(Report.receipt_code == code)
            )
        ).first()
    if row is None:
        await record_miss(request, "receipt", who, MISSES_PER_MINUTE, 60)
        # Passing only the legacy check and not on file: most likely a mistyped new code.
        raise _NOT_FOUND if receipts.is_current(code) else _MISTYPED
    return ReceiptOut(
        receipt_code=receipts.display(code),
        status=PUBLIC_STATUS.get(row.state, "received"),
        updated_at=row.updated_at,
    )
