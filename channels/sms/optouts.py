"""SMS opt-outs: a number that sent 退订/STOP gets nothing more until it sends 开始/START.

Kept by the number's blind index (the number itself is ciphertext at rest)."""

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.crypto import phone_index
from db.telephony import SmsOptOut


async def is_opted_out(session: AsyncSession, phone: str) -> bool:
    found = await session.scalar(
        select(SmsOptOut.phone_index).where(SmsOptOut.phone_index == phone_index(phone))
    )
    return found is not None


async def opt_out(session: AsyncSession, phone: str, keyword: str, now: datetime) -> None:
    await session.execute(
        insert(SmsOptOut)
        .values(
            phone_index=phone_index(phone), phone=phone, keyword=keyword[:20], opted_out_at=now
        )
        .on_conflict_do_nothing(index_elements=["phone_index"])
    )


async def opt_in(session: AsyncSession, phone: str) -> None:
    await session.execute(delete(SmsOptOut).where(SmsOptOut.phone_index == phone_index(phone)))
