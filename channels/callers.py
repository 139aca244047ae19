"""Who is calling or texting: one normal form of the number, and whether it is blocked."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.crypto import phone_index
from db.telephony import CallerBlock
from workflows.phones import normalize_phone


def caller_number(raw: str | None) -> str | None:
    """E.164 for a real number; None for a withheld or unparseable one ("anonymous")."""
    return normalize_phone(raw) if raw else None


def sender_key(raw: str) -> str:
    """What SMS threads and opt-outs are keyed on: E.164, or the raw sender id for a sender
    phonenumbers cannot parse (an alphanumeric or short code), so it still threads."""
    return caller_number(raw) or raw.strip()[:32]


async def active_block(
    session: AsyncSession, phone: str | None, now: datetime
) -> CallerBlock | None:
    if not phone:
        return None
    return (
        await session.execute(
            select(CallerBlock)
            .where(
                CallerBlock.phone_index == phone_index(phone),
                CallerBlock.lifted_at.is_(None),
                CallerBlock.expires_at > now,
            )
            .order_by(CallerBlock.expires_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
