"""Who may see hotline records (calls, call-backs, SMS threads): through their case.

A record tied to a case is visible to whoever may see the case. Calls and call-backs not
(yet) tied to one belong to the city center's hotline, like cases with no jurisdiction:
center staff at the root of the network see them.
"""

from sqlalchemy import ColumnElement, or_, select

from db.models import Case
from dispatch.staff.auth import Principal
from dispatch.staff.scope import case_filter, is_root


def via_case(case_id_column, principal: Principal) -> ColumnElement[bool]:
    linked = case_id_column.in_(select(Case.id).where(case_filter(principal)))
    if principal.is_center and is_root(principal):
        return or_(case_id_column.is_(None), linked)
    return linked
