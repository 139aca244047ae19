"""Correcting a case after intake (categories, emergency, jurisdiction, child details): the
change, its timeline event, routing re-planned, and the case kept as a labelled example.

One transaction. For a registered case the routing is planned again from the corrected
case: departments now needed get referrals (police their copy when it became an
emergency), referrals no longer needed, or now due at another office, are withdrawn with
the reason, and the liaison holding each (or its office's liaisons) is told why. Nothing is
cancelled silently; completed referrals stay as they are. A case still waiting in 发现 gets
the same for police's copy only (the rest is routed when it is registered).
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from db import clock
from db.crypto import EncryptedText
from db.models import Case, Jurisdiction, Referral, Report
from db.timeline import case_event
from db.triage import TriageExample
from dispatch.cases.access import load_case
from dispatch.children.matching_service import refresh_keys
from dispatch.referrals.routing import Target, plan_routes
from dispatch.referrals.service import OPEN, create_referrals
from dispatch.staff.audit import add_case_event, audit
from dispatch.staff.auth import Principal
from dispatch.staff.notifications import notify, office_liaisons
from workflows.cases.intake import ChildIn
from workflows.cases.workflow import FINISHED
from workflows.errors import Conflict, Invalid, WorkflowRefused
from workflows.partners.forwards import order_of, sources, text_to_judge
from workflows.reference import (
    allowed,
    category_labels,
    department_labels,
    jurisdiction_labels,
)
from workflows.referrals.deadlines import levels
from workflows.referrals.workflow import apply_referral_event
from workflows.supervision import child_figures
from workflows.triage.policy import REGISTERS, example_labels

# Reasons are shown to liaisons in a notification: kept short.
NOTICE_REASON_CHARS = 200


@dataclass
class Correction:
    """What the person changes; None leaves a field as it is."""

    reason: str
    categories: list[str] | None = None
    emergency: bool | None = None
    jurisdiction: str | None = None
    child: dict[str, Any] | None = None  # the fields given, None values clear one


@dataclass
class Outcome:
    changed: list[str] = field(default_factory=list)
    created: list[int] = field(default_factory=list)
    withdrawn: list[int] = field(default_factory=list)


async def correct_case(
    session: AsyncSession, case: Case, fix: Correction, principal: Principal, now: datetime
) -> Outcome:
    """Apply `fix` to the locked `case`; the caller checked scope and audits."""
    if case.state in FINISHED:
        raise Conflict("case_closed", "案件已结案、并案或不予受理，不能更正")
    report = await _first_report(session, case.id)
    before = _facts(case, report)
    if fix.categories is not None:
        case.categories = fix.categories
        case.not_a_case = None  # categories given by a person: it is a case
    if fix.emergency is not None:
        case.emergency = fix.emergency
        if fix.emergency:
            case.not_a_case, case.predicted_risk = None, levels()[0]
        elif report is not None and (report.judgement or {}).get("risk"):
            case.predicted_risk = report.judgement["risk"]  # a person lowered it
    if fix.jurisdiction is not None:
        case.jurisdiction_code = fix.jurisdiction
    child_fields: list[str] = []
    if fix.child is not None and report is not None:
        child_fields = _correct_child(report, fix.child)
        # The age and sex the periodic report counts follow the corrected child.
        case.child_age, case.child_sex = child_figures(report.child)
    case.updated_at = now
    after = _facts(case, report)
    outcome = Outcome(changed=[k for k in before if before[k] != after[k]])
    # A case still waiting in 发现 has only what intake sends at once (police's copy for
    # danger or a mandatory report): that part is planned again, the rest at registration.
    waiting = case.state == "discovered"
    await _replan(session, case, fix.reason, principal.label, now, outcome, police_only=waiting)
    # The timeline is shown to departments: child details appear only as field names.
    shown_before = {k: v for k, v in before.items() if k != "child"}
    shown_after = {k: v for k, v in after.items() if k != "child"}
    add_case_event(
        session, principal, case.id, "corrected",
        reason=fix.reason,
        data={
            "before": shown_before,
            "after": shown_after,
            "child": child_fields,
            "referrals_created": outcome.created,
            "referrals_withdrawn": outcome.withdrawn,
        },
        created_at=now,
    )
    if report is not None:
        await _keep_example(session, case, report, fix.reason, principal)
    return outcome


def _facts(case: Case, report: Report | None) -> dict[str, Any]:
    return {
        "categories": list(case.categories or []),
        "emergency": case.emergency,
        "jurisdiction": case.jurisdiction_code,
        "child": dict(report.child or {}) if report is not None else {},
    }


async def _first_report(session: AsyncSession, case_id: int) -> Report | None:
    return (
        await session.execute(
            select(Report).where(Report.case_id == case_id).order_by(Report.id).limit(1)
        )
    ).scalar_one_or_none()


def _correct_child(report: Report, given: dict[str, Any]) -> list[str]:
    """The child's details on the case's first report; returns the fields that changed."""
    old = dict(report.child or {})
    new = {k: v for k, v in {**old, **given}.items() if v is not None}
    report.child = new or None
    refresh_keys(report)
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


async def _replan(
    session: AsyncSession,
    case: Case,
    reason: str,
    actor: str,
    now: datetime,
    outcome: Outcome,
    *,
    police_only: bool,
) -> None:
    """Routing from the corrected case: withdraw what is no longer due, add what is."""
    planned = await plan_routes(session, case, police_only=police_only)
    targets = {t.department: t for t in planned}
    live = (
        (
            await session.execute(
                select(Referral)
                .where(Referral.case_id == case.id, Referral.status.in_(OPEN))
                .order_by(Referral.id)
                .with_for_update()
            )
        )
        .scalars()
        .all()
    )
    for referral in live:
        target = targets.get(referral.department_code)
        why = _withdraw_reason(referral, target, reason)
        if why is None:
            if target is not None and referral.role != target.role:
                referral.role, referral.updated_at = target.role, now
            continue
        await withdraw(session, case, referral, why, actor, now)
        outcome.withdrawn.append(referral.id)
    await session.flush()
    made = await create_referrals(session, case, list(targets.values()), actor, now)
    outcome.created += made


def _withdraw_reason(referral: Referral, target: Target | None, reason: str) -> str | None:
    """Why this referral goes, or None when it is still due at the same office."""
    if target is None:
        return f"案件更正后不再需要该部门办理（{reason}）"
    if referral.status == "unrouted" and target.office_id is None:
        return None
    if target.office_id != referral.office_id:
        place = jurisdiction_labels().get(target.jurisdiction_code or "", "其他机构")
        return f"案件辖区更正，改由{place}办理（{reason}）"
    return None


async def withdraw(
    session: AsyncSession, case: Case, referral: Referral, reason: str, actor: str, now: datetime
) -> None:
    """The center takes a referral back, with the reason; whoever holds it is told why."""
    if referral.status != "unrouted":  # unrouted lies outside the machine: nobody holds it
        try:
            apply_referral_event(referral.status, "withdraw", note=reason)
        except WorkflowRefused as refused:
            raise Conflict(refused.code, refused.message) from refused
    held_by, was = referral.claimed_by, referral.status
    referral.status, referral.withdraw_reason = "withdrawn", reason
    referral.next_check_at, referral.updated_at = None, now
    dept = department_labels().get(referral.department_code, referral.department_code)
    session.add(
        case_event(
            case_id=case.id,
            event="referral_withdrawn",
            actor=actor,
            reason=reason,
            data={"referral_id": referral.id, "department": referral.department_code},
            created_at=now,
        )
    )
    if was == "unrouted":
        return
    told = [held_by] if held_by else await office_liaisons(
        session, referral.department_code, referral.jurisdiction_code or ""
    )
    await notify(
        session,
        told,
        "referral_withdrawn",
        f"案件#{case.id} 的{dept}转介已由未保中心撤回：{reason[:NOTICE_REASON_CHARS]}",
        case_id=case.id,
        referral_id=referral.id,
    )


async def judged_text(session: AsyncSession, report: Report) -> str:
    """The text the report's judgement read: an SMS thread's messages, a partner's own
    words (without our heading), or the description."""
    if report.channel == "sms":
        bodies = (await session.execute(_THREAD_TEXT, {"report_id": report.id})).scalars()
        joined = "\n".join(b for b in bodies if b and b.strip())
        return joined or report.description
    if report.channel in sources() and report.raw:
        try:
            return text_to_judge(order_of(report.channel, report.raw))
        except ValidationError:
            return report.description
    return report.description


async def _keep_example(
    session: AsyncSession, case: Case, report: Report, reason: str, principal: Principal
) -> None:
    judged = report.judgement or {}
    labels = example_labels(
        categories=list(case.categories or []),
        emergency=case.emergency,
        situations=list(report.situations or []) + list(judged.get("situations") or []),
        jurisdiction=case.jurisdiction_code,
        not_a_case=case.not_a_case,
    )
    session.add(
        TriageExample(
            case_id=case.id,
            corpus_register=REGISTERS.get(report.channel, "call"),
            text=await judged_text(session, report),
            labels=labels,
            judged=judged or None,
            reason=reason,
            created_by=principal.id,
            actor=principal.label,
        )
    )


_THREAD_TEXT = text(
    "SELECT m.body FROM sms_message m JOIN sms_thread t ON t.id = m.thread_id"
    " WHERE t.report_id = :report_id AND m.direction = 'in'"
    " AND m.kind IN ('report', 'followup') ORDER BY m.id"
).columns(body=EncryptedText)


Code = Annotated[
    str, Field(min_length=1, max_length=40, json_schema_extra={"x-choices": "category"})
]


class CaseCorrectionIn(BaseModel):
    """Any of the four fields, and why."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    categories: Annotated[list[Code] | None, Field(default=None, max_length=13)] = None
    emergency: bool | None = None
    jurisdiction: Annotated[
        str | None,
        Field(
            default=None, min_length=1, max_length=32,
            json_schema_extra={"x-choices": "jurisdiction"},
        ),
    ] = None
    child: ChildIn | None = None
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


def _checked_categories(codes: list[str] | None) -> list[str] | None:
    if codes is None:
        return None
    known = category_labels()
    if not codes:
        raise Invalid("categories_required", f"请至少选择一个困境类型，可选：{allowed(known)}")
    if any(code not in known for code in codes):
        raise Invalid("unknown_category", f"困境类型代码无效，可选：{allowed(known)}")
    return list(dict.fromkeys(codes))


async def _checked_jurisdiction(session, code: str | None, principal: Principal) -> str | None:
    """A known jurisdiction inside the corrector's own scope (a case moved out of it would
    vanish from their sight)."""
    if code is None:
        return None
    known = jurisdiction_labels()
    if code not in known:
        raise Invalid("unknown_jurisdiction", f"辖区代码无效，可选：{allowed(known)}")
    path = await session.scalar(select(Jurisdiction.path).where(Jurisdiction.code == code))
    if not path or not path.startswith(principal.scope_path or "\x00"):
        raise Invalid("jurisdiction_out_of_scope", "只能更正为您所辖范围内的辖区")
    return code


async def correct(
    *, session: AsyncSession, principal: Principal, ip: str | None, case_id: int,
    body: CaseCorrectionIn,
) -> None:
    """Correct the case, with the reason; audited, on the timeline, routing re-planned."""
    given = body.model_fields_set - {"reason"}
    if not given:
        raise Invalid(
            "nothing_to_correct", "请至少更正一项：categories、emergency、jurisdiction、child"
        )
    if "emergency" in given and body.emergency is None:
        raise Invalid("invalid_emergency", "emergency 应为 true 或 false")
    now = clock.now()
    case = await load_case(session, principal, case_id, lock=True)
    fix = Correction(
        reason=body.reason,
        categories=_checked_categories(body.categories),
        emergency=body.emergency,
        jurisdiction=await _checked_jurisdiction(session, body.jurisdiction, principal),
        child=body.child.model_dump(exclude_unset=True) if body.child else None,
    )
    outcome = await correct_case(session, case, fix, principal, now)
    audit(
        session,
        principal,
        "case.correct",
        "case",
        case.id,
        detail={
            "fields": sorted(given),
            "changed": outcome.changed,
            "referrals_created": outcome.created,
            "referrals_withdrawn": outcome.withdrawn,
        },
        ip=ip,
    )
