"""Job handlers for the center's own topics: intake, delivery to an office, notifications.

Each is idempotent, since RQ may run a job again after a worker dies mid-job.
"""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from channels.staff_sms import send_staff_sms
from db.engine import transaction
from db.handlers import JobContext
from db.models import AppUser, Case, Notification, Referral, Report
from dispatch.case_service import TERMINAL, Actor, transition
from dispatch.notify import notify, office_liaisons
from dispatch.partner_feedback import owe_feedback
from dispatch.referrals import create_referrals
from dispatch.routing import plan_routes
from workflows.forwards import needs_review
from workflows.judgement_policy import AUTO_REGISTER, auto_registers
from workflows.reference import department_labels

__all__ = ["AUTO_REGISTER"]
SYSTEM = Actor("system:intake", "system")


async def process_intake(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Police at once for danger and mandatory reports; auto-register complete reports.

    Also sent again by a channel when a later message raises a case to an emergency: the
    police copy is added if missing (create_referrals never duplicates a department).
    """
    now = datetime.now(UTC)
    async with transaction(ctx.sessions) as session:
        case = (
            await session.execute(
                select(Case).where(Case.id == payload["case_id"]).with_for_update()
            )
        ).scalar_one_or_none()
        if case is None or case.state in TERMINAL:
            return
        police = await plan_routes(session, case, police_only=True)
        await create_referrals(session, case, police, SYSTEM.name, now)
        report = (
            await session.execute(
                select(Report.channel, Report.raw).where(Report.id == payload.get("report_id"))
            )
        ).first()
        if (
            case.state == "discovered"
            and report is not None
            and auto_registers(
                report.channel,
                partner_review=needs_review(report.channel, report.raw),
                not_a_case=case.not_a_case,
            )
        ):
            await transition(session, case, "register", SYSTEM, now, reason="自动登记")


async def deliver_referral(ctx: JobContext, payload: dict[str, Any]) -> None:
    """The referral is in its office's queue: record it and tell the office's liaisons."""
    async with transaction(ctx.sessions) as session:
        referral = (
            await session.execute(
                select(Referral).where(Referral.id == payload["referral_id"]).with_for_update()
            )
        ).scalar_one_or_none()
        if referral is None or referral.delivered_at is not None:
            return
        referral.delivered_at = datetime.now(UTC)
        dept = department_labels().get(referral.department_code, referral.department_code)
        users = await office_liaisons(
            session, referral.department_code, referral.jurisdiction_code or ""
        )
        await notify(
            session,
            users,
            "referral_new",
            f"新转介：案件#{referral.case_id}（{dept}），请及时认领",
            case_id=referral.case_id,
            referral_id=referral.id,
        )


async def send_notification(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Send one notification; a failure is recorded on the row, then raised so RQ retries."""
    failure: Exception | None = None
    async with transaction(ctx.sessions) as session:
        note = (
            await session.execute(
                select(Notification)
                .where(Notification.id == payload["notification_id"])
                .with_for_update()
            )
        ).scalar_one_or_none()
        if note is None or note.status in ("sent", "logged"):
            return
        phone = await session.scalar(select(AppUser.phone).where(AppUser.id == note.user_id))
        note.attempts += 1
        try:
            note.channel = await send_staff_sms(ctx.settings, phone, note.text, f"#{note.id}")
        except Exception as exc:  # noqa: BLE001 - recorded here, re-raised below
            note.status, note.error, failure = "failed", type(exc).__name__, exc
        else:
            note.status = "sent" if note.channel == "sms" else "logged"
            note.sent_at = datetime.now(UTC)
    if failure is not None:
        raise failure


async def case_status(ctx: JobContext, payload: dict[str, Any]) -> None:
    """A case changed state: the partners who forwarded it are owed a status message."""
    async with transaction(ctx.sessions) as session:
        await owe_feedback(session, payload["case_id"])
