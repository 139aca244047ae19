"""A concern raised by a village's 儿童主任 or a township 未保站 worker: it opens a report.

They are mandatory reporters (community cadres) who know the children of their area first.
The report goes through the same intake as the web form (one judgement, routing, the police
copied when a child is in danger), under their own name, for a place inside their area.
"""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AppUser, Jurisdiction
from dispatch.staff.auth import Principal
from workflows.cases.intake import IntakeResult, NewReport, record_report
from workflows.errors import Invalid

AREA_UNITS = {"child_director": "儿童主任", "station_worker": "未保站"}


async def raise_concern(
    *,
    session: AsyncSession,
    principal: Principal,
    description: str,
    jurisdiction: str | None,
    child: dict | None,
    categories: list[str],
    in_danger_now: bool,
) -> IntakeResult:
    """Record the concern as a report in the caller's transaction; refused for a place
    outside the person's area."""
    place = jurisdiction or principal.jurisdiction
    path = await session.scalar(select(Jurisdiction.path).where(Jurisdiction.code == place))
    if not path or not principal.scope_path or not path.startswith(principal.scope_path):
        raise Invalid("out_of_area", "只能报告本辖区内儿童的情况")
    phone = await session.scalar(select(AppUser.phone).where(AppUser.id == principal.id))
    new = NewReport(
        channel="webform",
        description=description,
        reporter={
            "name": principal.username,
            "unit": AREA_UNITS.get(principal.role, ""),
            "role": "community_cadre",
        },
        reporter_phone=phone,
        categories=categories,
        child=child or None,
        jurisdiction_code=place,
        address=(child or {}).get("address"),
        in_danger_now=in_danger_now,
        emergency=in_danger_now,
        raw={"raised_by": principal.username, "role": principal.role},
        actor=principal.label,
    )
    return await record_report(session, new)
