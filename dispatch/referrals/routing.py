"""Routing a case to departments' offices (谁主管、谁负责; 属地管理).

Each category names a lead department and cooperating ones; an emergency or a mandatory
report always goes to police as well. Each department is sent to its office at the case's
jurisdiction, or the nearest office above it. A department with no office anywhere in the
chain still gets a referral, in the explicit status `unrouted`, which the center sees and
routes by hand: nothing is dropped.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Case, Category, Jurisdiction, Office
from workflows.errors import Invalid

LEAD, COOPERATING, POLICE_COPY = "lead", "cooperating", "police_copy"


@dataclass(frozen=True)
class Target:
    department: str
    role: str
    office_id: int | None
    jurisdiction_code: str | None


def departments_for(
    categories: list[str],
    rules: dict[str, tuple[str, list[str]]],
    *,
    police_now: bool,
) -> dict[str, str]:
    """Department → role: police's copy first (the referral that may save a child now
    heads the case's list and its liaisons' notifications), then the lead, then the
    cooperating ones. Pure, so the table can be tested on its own."""
    roles: dict[str, str] = {}
    for code in categories:
        lead, cooperating = rules.get(code, rules["other"])
        roles[lead] = LEAD
        for dept in cooperating:
            roles.setdefault(dept, COOPERATING)
    if police_now:
        roles.setdefault("police", POLICE_COPY)
    return dict(sorted(roles.items(), key=lambda kv: (kv[1] != POLICE_COPY, kv[1] != LEAD)))


async def _chain(session: AsyncSession, jurisdiction: str | None) -> list[str]:
    """The case's jurisdiction and its ancestors, nearest first (root alone if unknown)."""
    if jurisdiction:
        path = await session.scalar(
            select(Jurisdiction.path).where(Jurisdiction.code == jurisdiction)
        )
        if path:
            return list(reversed(path.strip("/").split("/")))
    root = await session.scalar(select(Jurisdiction.code).where(Jurisdiction.level == 1))
    return [root] if root else []


async def _offices_on_path(
    session: AsyncSession, departments: list[str], jurisdiction: str | None
) -> tuple[list[str], list[Any]]:
    """The case's chain (nearest first) and the departments' offices on it: one round trip
    for a case whose jurisdiction is known (every routed intake), two for one at the root."""
    if jurisdiction:
        here = select(Jurisdiction.path).where(Jurisdiction.code == jurisdiction).subquery()
        on_path = Office.jurisdiction_code == func.any(
            func.string_to_array(func.btrim(here.c.path, "/"), "/")
        )
        rows = (
            await session.execute(
                select(here.c.path, Office.id, Office.department_code, Office.jurisdiction_code)
                .select_from(here)
                .outerjoin(Office, and_(Office.department_code.in_(departments), on_path))
            )
        ).all()
        if rows and rows[0].path:
            chain = list(reversed(rows[0].path.strip("/").split("/")))
            return chain, [(r.id, r.department_code, r.jurisdiction_code) for r in rows if r.id]
    chain = await _chain(session, None)
    offices = await session.execute(
        select(Office.id, Office.department_code, Office.jurisdiction_code).where(
            Office.department_code.in_(departments), Office.jurisdiction_code.in_(chain)
        )
    )
    return chain, offices.all()


async def plan_routes(
    session: AsyncSession, case: Case, *, police_only: bool = False
) -> list[Target]:
    police_now = case.emergency or case.mandatory
    if police_only:
        roles = {"police": POLICE_COPY} if police_now else {}
    else:
        codes = case.categories or ["other"]
        # Only the case's categories (and the fallback), as plain rows: the whole table as
        # ORM objects cost more CPU than the rest of routing.
        rows = await session.execute(
            select(Category.code, Category.lead_department, Category.cooperating).where(
                Category.code.in_([*codes, "other"])
            )
        )
        rules = {code: (lead, list(cooperating)) for code, lead, cooperating in rows}
        roles = departments_for(codes, rules, police_now=police_now)
    if not roles:
        return []
    chain, offices = await _offices_on_path(session, list(roles), case.jurisdiction_code)
    rank = {code: i for i, code in enumerate(chain)}
    nearest: dict[str, tuple[int, str]] = {}
    for office_id, dept, where in sorted(offices, key=lambda o: rank[o[2]]):
        nearest.setdefault(dept, (office_id, where))
    return [Target(dept, role, *nearest.get(dept, (None, None))) for dept, role in roles.items()]


async def plan_routes_for(
    session: AsyncSession, case: Case, department: str, office_id: int | None
) -> Target:
    """A target the center names by hand: an explicit office, or the department's nearest."""
    if office_id is not None:
        office = await session.get(Office, office_id)
        if office is None or office.department_code != department:
            raise Invalid("unknown_office", "指定的办理机构不存在或不属于该部门")
        return Target(department, LEAD, office.id, office.jurisdiction_code)
    chain = await _chain(session, case.jurisdiction_code)
    rank = {code: i for i, code in enumerate(chain)}
    offices = (
        await session.execute(
            select(Office.id, Office.jurisdiction_code).where(
                Office.department_code == department, Office.jurisdiction_code.in_(chain)
            )
        )
    ).all()
    if not offices:
        return Target(department, LEAD, None, None)
    best = min(offices, key=lambda o: rank[o[1]])
    return Target(department, LEAD, best[0], best[1])
