"""Who may do what, in one place: named permissions, each with the roles it admits and its
scope rule, used by the JSON endpoints (`requires`) and the console pages alike.

Default deny: a route names one permission; a role not listed, or a department's staff where
the permission is the center's own work, is refused before the handler runs. Which rows a
permitted person then sees is the scope in SQL (`dispatch.staff.scope`).
"""

from dataclasses import dataclass

from dispatch.staff.auth import AREA_ROLES, ROLES, Principal, require, require_center

CENTER = ("operator", "caseworker", "supervisor")
CASE_STAFF = (*CENTER, "liaison")


@dataclass(frozen=True)
class Permission:
    name: str
    roles: frozenset[str]
    # The center's own work (the workflow, routing, the hotline desk): a department's
    # supervisor holds the role but not the job.
    center_only: bool = False

    def allows(self, principal: Principal) -> bool:
        return principal.role in self.roles and (principal.is_center or not self.center_only)


def _permission(name: str, roles: tuple[str, ...], *, center_only: bool = False) -> Permission:
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {unknown}")
    return Permission(name, frozenset(roles), center_only)


SIGNED_IN = _permission("signed_in", ROLES)
# Cases: read in one's scope; the desk's work on them; the caseworkers' own.
CASE_READ = _permission("case.read", (*CASE_STAFF, *AREA_ROLES))
# Casework: holding cases ("my cases"), the area staff's own work, tasks, call wrap-up.
CASE_HOLD = _permission("case.hold", ("caseworker", "supervisor", *AREA_ROLES))
AREA_WORK = _permission("area.work", AREA_ROLES)
TASK_READ = _permission("task.read", (*CASE_STAFF,))
CALL_WRAPUP = _permission("call.wrapup", CENTER, center_only=True)
# Visits: the center's caseworkers, and the area staff paired with the case.
VISIT = _permission("case.visit", ("caseworker", "supervisor", *AREA_ROLES))
CASE_DESK = _permission("case.desk", CENTER, center_only=True)
CASEWORK = _permission("case.casework", ("caseworker", "supervisor"), center_only=True)
TRIAGE = _permission("triage", CASE_STAFF)
# Referrals: seen by the center and the departments; claimed and worked by liaisons.
REFERRAL_READ = _permission("referral.read", CASE_STAFF)
REFERRAL_CLAIM = _permission("referral.claim", ("liaison",))
# The hotline: blocking an abusive caller is a decision of the center's supervisor (a
# department's supervisor, e.g. a school official, must never silence a child's number).
CALLER_BLOCK = _permission("caller.block", ("supervisor",), center_only=True)
# Retention: a legal hold (诉讼保全) suspends a case's retention period; the center's
# supervisor decides it, like a caller block (dispatch.retention.holds).
LEGAL_HOLD = _permission("case.legal_hold", ("supervisor",), center_only=True)
# The partner loop (110 / 12345 / 12355).
PARTNER_READ = _permission("partner.read", (*CENTER, "admin"), center_only=True)
PARTNER_MANAGE = _permission("partner.manage", ("supervisor", "admin"), center_only=True)
# Oversight: deadlines board, figures and reports, the audit log, the service's health.
SUPERVISION = _permission("supervision", ("supervisor",))
AUDIT_READ = _permission("audit.read", ("supervisor", "admin"))
DISPATCH_STATUS = _permission("dispatch.status", ("supervisor", "admin"))
ADMINISTRATION = _permission("administration", ("admin",))
# Staff accounts (dispatch.staff.accounts): the center's administrators only; the service
# refuses a department's admin itself (`Actor.staff`).
ACCOUNT_MANAGE = _permission("account.manage", ("admin",))
# Supervision (dispatch.supervision): the department scorecard (a department's supervisor
# sees their own); 督查 orders, which the departments answer; the center's inspecting work
# (opening and lifting orders, 重点个案, 督导 notes); the periodic reports sent up.
SCORECARD_READ = _permission("supervision.scorecard", ("supervisor", "inspector"))
ORDER_READ = _permission("supervision.orders", ("supervisor", "inspector", "liaison"))
INSPECT = _permission("supervision.inspect", ("supervisor", "inspector"), center_only=True)
PERIODIC_REPORT = _permission(
    "supervision.report", ("caseworker", "supervisor", "inspector"), center_only=True
)

# Who may send which workflow event. Default deny: an event not listed is refused for
# everyone ("system" is the service itself).
EVENT_ROLES = {
    "register": {"operator", "caseworker", "supervisor", "system"},
    "assess": {"caseworker", "supervisor", "system"},
    "handle": {"caseworker", "supervisor"},
    "follow_up": {"caseworker", "supervisor"},
    "reassess": {"caseworker", "supervisor"},
    "close": {"caseworker", "supervisor"},
    "reopen": {"caseworker", "supervisor"},
    "merge": {"caseworker", "supervisor"},
    "invalidate": {"operator", "caseworker", "supervisor"},
}


def requires(permission: Permission):
    """Dependency of a JSON endpoint: the signed-in principal, if the permission admits
    them; 403 otherwise (401 without a valid token)."""
    check = require_center if permission.center_only else require
    return check(*sorted(permission.roles))
