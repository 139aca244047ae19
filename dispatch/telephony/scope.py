"""Who may see hotline records (calls, call-backs, SMS threads, caller blocks): through
their case, or through whoever made them.

A record tied to a case is visible to whoever may see the case. Calls and call-backs not
(yet) tied to one belong to the city center's hotline, like cases with no jurisdiction:
center staff at the root of the network see them. A caller block belongs to the center
office that made it: the city center sees every block, a district's center the blocks its
own staff made (a block has no case of its own to be scoped by).
"""

from sqlalchemy import ColumnElement, exists, false, or_, select, true

from db.models import AppUser, Case
from db.telephony import CallerBlock
from dispatch.staff.auth import Principal
from dispatch.staff.scope import case_filter, in_subtree, is_root


def via_case(case_id_column, principal: Principal) -> ColumnElement[bool]:
    linked = case_id_column.in_(select(Case.id).where(case_filter(principal)))
    if principal.is_center and is_root(principal):
        return or_(case_id_column.is_(None), linked)
    return linked


def block_filter(principal: Principal) -> ColumnElement[bool]:
    """Blocks the principal may list and lift. Default deny: only the center's staff, the
    city center all of them, anyone else below the root those made inside their subtree."""
    if not principal.is_center or not principal.scope_path:
        return false()
    if is_root(principal):
        return true()
    return exists(
        select(AppUser.id).where(
            AppUser.id == CallerBlock.created_by,
            in_subtree(AppUser.jurisdiction_code, principal.scope_path),
        )
    )
