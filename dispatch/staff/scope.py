"""Who may see which case or referral: role × department × jurisdiction subtree.

Default deny. The center's staff (operator, caseworker, supervisor with no department or
the center's) see cases in their jurisdiction's subtree (the city center, at the root, also
sees cases with no jurisdiction yet). Department staff (liaisons, and supervisors of a
department) see referrals to their own department whose office lies in their subtree, and
the cases behind those referrals while a referral is live (`case_filter`). Admins manage
accounts and see no case data.
"""

from sqlalchemy import ColumnElement, String, and_, cast, exists, false, func, or_, select, true

from db.casework import CaseAssignment
from db.models import Case, CaseEvent, Jurisdiction, Referral
from dispatch.staff.auth import AREA_ROLES, Principal
from workflows.referrals.workflow import ACTIVE

# The referrals through which a department sees the case: still owed work (待指派, 待认领,
# 已认领, 办理中) or done (已办结). A returned (已退回), cancelled (已撤销) or withdrawn
# (已撤回) referral is the department's no more: its own row stays in the department's
# referral list (their record of what they did), the case's content does not.
LIVE_REFERRAL = ACTIVE


def in_subtree(code_column, path: str) -> ColumnElement[bool]:
    return exists(
        select(Jurisdiction.code).where(
            Jurisdiction.code == code_column,
            Jurisdiction.path.startswith(path, autoescape=True),
        )
    )


def _is_department_staff(principal: Principal) -> bool:
    return principal.role in ("liaison", "supervisor") and not principal.is_center


def is_root(principal: Principal) -> bool:
    return bool(principal.scope_path) and principal.scope_path.count("/") == 1


def _department_share(principal: Principal, department, jurisdiction) -> ColumnElement[bool]:
    """A department's staff see their department's shares within their area."""
    if not principal.department:
        return false()
    return and_(department == principal.department, in_subtree(jurisdiction, principal.scope_path))


def referral_filter(principal: Principal) -> ColumnElement[bool]:
    # No path (None, or "" which no jurisdiction row has) is no scope, never everything.
    if not principal.scope_path:
        return false()
    if _is_department_staff(principal):
        return _department_share(principal, Referral.department_code, Referral.jurisdiction_code)
    if principal.is_center:
        return exists(select(Case.id).where(Case.id == Referral.case_id, case_filter(principal)))
    return false()


def tallied_referral_filter(
    principal: Principal, department, jurisdiction, case_jurisdiction
) -> ColumnElement[bool]:
    """`referral_filter`'s rule over counted rows that carry a referral's department and
    place and its case's place (the scorecard's tally): the same answer for the same rows."""
    if not principal.scope_path:
        return false()
    if _is_department_staff(principal):
        return _department_share(principal, department, jurisdiction)
    if principal.is_center:
        own = in_subtree(case_jurisdiction, principal.scope_path)
        return or_(own, case_jurisdiction.is_(None)) if is_root(principal) else own
    return false()


def tallied_case_filter(
    principal: Principal, viewer, places, jurisdiction
) -> ColumnElement[bool] | None:
    """`case_filter`'s rule over counted rows that carry who sees the case (`viewer`: ''
    for the center, else a department with a live referral on it, `places`: those
    referrals' places) and the case's place (the statistics tally): the same answer for the
    same rows. None for an area worker, whose cases are theirs by pairing: not counted."""
    if not principal.scope_path:
        return false()
    if principal.is_center:
        own = in_subtree(jurisdiction, principal.scope_path)
        return and_(viewer == "", or_(own, jurisdiction.is_(None)) if is_root(principal) else own)
    if _is_department_staff(principal):
        if not principal.department:
            return false()
        subtree = select(func.array_agg(Jurisdiction.code)).where(
            Jurisdiction.path.startswith(principal.scope_path, autoescape=True)
        )
        return and_(viewer == principal.department, places.overlap(subtree.scalar_subquery()))
    if principal.role in AREA_ROLES:
        return None
    return false()


def case_filter(principal: Principal) -> ColumnElement[bool]:
    """Cases the principal may see.

    Department staff see a case only through a live referral of theirs (`LIVE_REFERRAL`).
    A completed one keeps read access, also after the case is closed: the department did
    the work and answers for it (a 督查 order, a reopened case, the reporter's question),
    and a completed referral is part of the case's record like an open one. Returned,
    cancelled and withdrawn ones end it: the department was never, or is no longer, the
    one helping this child."""
    if not principal.scope_path:
        return false()
    if principal.is_center:
        own = in_subtree(Case.jurisdiction_code, principal.scope_path)
        if is_root(principal):
            return or_(own, Case.jurisdiction_code.is_(None))
        return own
    if _is_department_staff(principal):
        return exists(
            select(Referral.id).where(
                Referral.case_id == Case.id,
                Referral.status.in_(LIVE_REFERRAL),
                referral_filter(principal),
            )
        )
    if principal.role in AREA_ROLES:
        # A 儿童主任 / 未保站 worker: the cases paired with them, inside their area.
        return and_(
            exists(
                select(CaseAssignment.case_id)
                .where(
                    CaseAssignment.case_id == Case.id,
                    CaseAssignment.pairing_id == principal.id,
                )
                .correlate(Case)  # also inside queries that join the assignments themselves
            ),
            in_subtree(Case.jurisdiction_code, principal.scope_path),
        )
    return false()


def case_event_filter(principal: Principal) -> ColumnElement[bool]:
    """Which of a visible case's timeline events the principal reads. A department's staff:
    the case's own events and their own share's, not another department's (sent to whom,
    claimed by whom, its deadlines and 督办, why it was returned), as the case's referral
    table shows them their own share only. Everyone else who may see the case: all."""
    if not _is_department_staff(principal):
        return true()
    if not principal.department:
        return false()
    department = CaseEvent.data["department"].astext
    referral = CaseEvent.data["referral_id"].astext
    theirs = select(cast(Referral.id, String)).where(
        Referral.case_id == CaseEvent.case_id, referral_filter(principal)
    )
    return and_(
        or_(department.is_(None), department == principal.department),
        or_(referral.is_(None), referral.in_(theirs)),
    )


def sees_reporter(principal: Principal) -> bool:
    """Reporter identity: the center and police only (mandatory-reporting confidentiality)."""
    return principal.is_center or (
        _is_department_staff(principal) and principal.department == "police"
    )
