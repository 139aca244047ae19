"""Job handlers for the center's own topics: intake, delivery to an office, notifications.

Each is idempotent, since the reconciler enqueues a job again when its row is not done in
time, and marks its outbox row done in the transaction of its effect (`finish`). The intake
job is the only one before an intake's referrals sit in their offices' queues: it routes,
creates the referrals, delivers them and writes their notifications in one transaction.
"""

from typing import Any

from sqlalchemy import select

from channels.sms.staff import send_staff_sms
from db import clock
from db.engine import transaction
from db.handlers import JobContext, finish
from db.models import Case, Outbox, Referral, Report
from db.notifications_repository import Outcome, lock_pending, record_outcomes
from dispatch.cases.service import Actor, transition
from dispatch.partners.feedback import owe_feedback
from dispatch.referrals.routing import plan_routes
from dispatch.referrals.service import create_referrals, deliver
from workflows.cases.workflow import FINISHED
from workflows.partners.forwards import needs_review
from workflows.triage.policy import AUTO_REGISTER, auto_registers

__all__ = ["AUTO_REGISTER"]
SYSTEM = Actor("system:intake", "system")


async def process_intake(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Police at once for danger and mandatory reports; auto-register complete reports.

    Also sent again by a channel when a later message raises a case to an emergency: the
    police copy is added if missing (create_referrals never duplicates a department).
    """
    now = clock.now()
    async with transaction(ctx.sessions) as session:
        # The case, locked, and its report's channel and text in one round trip.
        found = (
            await session.execute(
                select(Case, Report.channel, Report.raw)
                .outerjoin(Report, Report.id == payload.get("report_id"))
                .where(Case.id == payload["case_id"])
                .with_for_update(of=Case)
            )
        ).first()
        case = found[0] if found else None
        if case is None or case.state in FINISHED:
            await finish(session, ctx)
            return
        channel, raw = found.channel, found.raw
        if (
            case.state == "discovered"
            and channel is not None
            and auto_registers(
                channel,
                partner_review=needs_review(channel, raw),
                not_a_case=case.not_a_case,
            )
        ):
            # Registering routes every department, police's copy among them (first).
            await transition(session, case, "register", SYSTEM, now, reason="自动登记")
        else:
            police = await plan_routes(session, case, police_only=True)
            await create_referrals(session, case, police, SYSTEM.name, now)
        # Matching (a file for the child, a likely duplicate) in a job of its own: routing
        # an emergency does not wait for it. Added last, its row goes out in one INSERT with
        # the rows routing wrote (the partners' wake-up).
        session.add(Outbox(topic="case.match", payload={"case_id": case.id}))
        await finish(session, ctx)


async def deliver_referral(ctx: JobContext, payload: dict[str, Any]) -> None:
    """A `referral.dispatch` row written before delivery moved into the routing transaction."""
    async with transaction(ctx.sessions) as session:
        referral = await session.get(Referral, payload["referral_id"], with_for_update=True)
        if referral is not None and referral.delivered_at is None:
            await deliver(session, referral, clock.now())
        await finish(session, ctx)


async def send_notification(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Send a transaction's notifications: those not sent yet, locked with their users'
    phones in one read, then every outcome (sent, logged, failed) in one write and the row
    done, in one transaction (db/notifications_repository.py). A failed send does not stop
    the others; it is recorded on its row, then raised after the commit, so the row stays
    not done and the reconciler tries again later (sent ones are not sent twice). A worker
    killed mid-batch commits none of it: the retry sends again what the batch had sent (a
    transaction per notification narrowed that to one, at five round trips each)."""
    ids = payload.get("notification_ids") or [payload["notification_id"]]
    failure: Exception | None = None
    async with transaction(ctx.sessions) as session:
        outcomes: list[Outcome] = []
        for note in await lock_pending(session, ids):
            try:
                channel = await send_staff_sms(ctx.settings, note.phone, note.text, f"#{note.id}")
            except Exception as exc:  # noqa: BLE001 - recorded here, raised after the commit
                failure = exc
                outcomes.append(Outcome(note.id, "failed", error=type(exc).__name__))
            else:
                status = "sent" if channel == "sms" else "logged"
                outcomes.append(Outcome(note.id, status, channel, sent_at=clock.now()))
        await record_outcomes(session, outcomes)
        if failure is None:
            await finish(session, ctx)
    if failure is not None:
        raise failure


async def case_status(ctx: JobContext, payload: dict[str, Any]) -> None:
    """A case changed state: the partners who forwarded it are owed a status message.

    Transitions now owe it in their own transaction; this runs the `case.status` rows an
    older version wrote (and owes nothing twice: messages are unique per order and status)."""
    async with transaction(ctx.sessions) as session:
        case_id = payload["case_id"]
        if await session.scalar(select(Case.id).where(Case.id == case_id).with_for_update()):
            await owe_feedback(session, case_id)
        await finish(session, ctx)
