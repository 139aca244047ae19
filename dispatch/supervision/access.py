"""Who sees which supervision rows, in SQL (default deny, like `dispatch.scope`).

督查 orders: the center's staff see those on cases in their scope; a department's staff
(liaisons, the department's supervisor) see those addressed to their department at an
office in their jurisdiction's subtree. Roles that may act are checked by the service.
"""

from sqlalchemy import ColumnElement, and_, exists, false, select

from db.models import Case, Jurisdiction, SupervisionOrder
from dispatch.staff.auth import Principal
from dispatch.staff.scope import case_filter

# Who puts a case under 挂牌督办, lifts it, flags 重点个案 and writes 督导 notes.
SUPERVISING_ROLES = ("supervisor", "inspector")


def is_department_staff(principal: Principal) -> bool:
    return (
        principal.role in ("liaison", "supervisor")
        and not principal.is_center
        and bool(principal.department)
    )


def order_filter(principal: Principal) -> ColumnElement[bool]:
    if not principal.scope_path:
        return false()
    if principal.is_center:
        return exists(
            select(Case.id).where(Case.id == SupervisionOrder.case_id, case_filter(principal))
        )
    if is_department_staff(principal):
        return and_(
            SupervisionOrder.department_code == principal.department,
            exists(
                select(Jurisdiction.code).where(
                    Jurisdiction.code == SupervisionOrder.jurisdiction_code,
                    Jurisdiction.path.startswith(principal.scope_path, autoescape=True),
                )
            ),
        )
    return false()
