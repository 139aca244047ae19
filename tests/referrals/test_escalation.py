"""Deadlines and escalation with a controlled clock: warn, 督办 at the deadline, 挂牌督办 at
twice the window, idle claims back to the queue, overdue follow-up visits."""

from datetime import timedelta

from sqlalchemy import select

from db.models import Case, CaseEvent, Notification, Referral, Visit
from dispatch.referrals.deadlines import sweep_referrals, sweep_visits
from tests.fixtures.lookups import notified
from tests.fixtures.referrals import red_case_with_police_referral


async def _sweep(sessions, now) -> None:
    async with sessions() as session, session.begin():
        await sweep_referrals(session, now)


async def _events(sessions, case_id: int) -> list[str]:
    async with sessions() as session:
        return list((await session.execute(select(CaseEvent.event).where(
            CaseEvent.case_id == case_id).order_by(CaseEvent.id))).scalars())


async def test_unclaimed_red_referral_warns_escalates_and_flags(sessions, pump, make_user):
    supervisor = await make_user("supervisor", jurisdiction="990103")
    police_supervisor = await make_user("supervisor", "police", jurisdiction="990100")
    other_district = await make_user("supervisor", jurisdiction="990102")
    liaison = await make_user("liaison", "police", "990103001")
    case_id, referral = await red_case_with_police_referral(sessions, pump)
    created = referral.created_at
    # Emergency → red until assessed: claim within 30 minutes.
    assert referral.claim_due_at == created + timedelta(minutes=30)
    assert referral.next_check_at < referral.claim_due_at

    await _sweep(sessions, created + timedelta(minutes=10))
    assert "deadline_warning" not in await _events(sessions, case_id)

    await _sweep(sessions, created + timedelta(minutes=25))
    assert (await _events(sessions, case_id)).count("deadline_warning") == 1
    await _sweep(sessions, created + timedelta(minutes=26))  # nothing new to say
    assert (await _events(sessions, case_id)).count("deadline_warning") == 1

    await _sweep(sessions, created + timedelta(minutes=31))
    assert (await _events(sessions, case_id)).count("escalated") == 1
    await _sweep(sessions, created + timedelta(minutes=61))
    events = await _events(sessions, case_id)
    assert events.count("flagged") == 1 and events.count("escalated") == 1

    async with sessions() as session:
        stored = await session.get(Referral, referral.id)
        notes = (await session.execute(select(Notification.user_id, Notification.kind).where(
            Notification.case_id == case_id))).all()
    assert stored.escalation == 3 and stored.next_check_at is None
    told = {(uid, kind) for uid, kind in notes}
    assert (liaison.id, "deadline_warning") in told
    assert (supervisor.id, "escalated") in told and (supervisor.id, "flagged") in told
    assert (police_supervisor.id, "escalated") in told
    assert all(uid != other_district.id for uid, _ in told)


async def test_claiming_starts_the_action_deadline_and_idle_claims_return(
    client, sessions, pump, make_user, login
):
    liaison = await make_user("liaison", "police", "990103001")
    headers = await login(liaison)
    case_id, referral = await red_case_with_police_referral(sessions, pump)
    claimed = await client.post(f"/api/v1/referrals/{referral.id}/claim", headers=headers)
    assert claimed.status_code == 200
    async with sessions() as session:
        stored = await session.get(Referral, referral.id)
    created, claimed_at = stored.created_at, stored.claimed_at
    assert stored.escalation == 0
    assert stored.action_due_at == created + timedelta(hours=2)

    # Claimed, then nothing for a whole claim window: back to the queue, everyone told.
    await _sweep(sessions, claimed_at + timedelta(minutes=31))
    async with sessions() as session:
        stored = await session.get(Referral, referral.id)
    assert stored.status == "queued" and stored.claimed_by is None
    events = await _events(sessions, case_id)
    assert "claim_released" in events
    again = await client.post(f"/api/v1/referrals/{referral.id}/claim", headers=headers)
    assert again.status_code == 200


async def test_a_first_action_ends_the_deadline_watch(client, sessions, pump, make_user, login):
    headers = await login(await make_user("liaison", "police", "990103001"))
    case_id, referral = await red_case_with_police_referral(sessions, pump)
    await client.post(f"/api/v1/referrals/{referral.id}/claim", headers=headers)
    await client.post(f"/api/v1/referrals/{referral.id}/progress", json={"note": "已到场"},
                      headers=headers)
    async with sessions() as session:
        stored = await session.get(Referral, referral.id)
    assert stored.status == "in_progress" and stored.next_check_at is None
    await _sweep(sessions, stored.created_at + timedelta(days=3))
    assert "escalated" not in await _events(sessions, case_id)


async def test_assessment_moves_deadlines_to_the_assessed_level(
    client, sessions, pump, make_user, login
):
    caseworker = await login(await make_user("caseworker"))
    case_id, referral = await red_case_with_police_referral(sessions, pump)
    await client.post(f"/api/v1/cases/{case_id}/events", json={"event": "register"},
                      headers=caseworker)
    await client.post(f"/api/v1/cases/{case_id}/events", json={"event": "assess"},
                      headers=caseworker)
    response = await client.post(f"/api/v1/cases/{case_id}/assessment",
                                 json={"risk_level": "orange"}, headers=caseworker)
    assert response.status_code == 200
    async with sessions() as session:
        stored = await session.get(Referral, referral.id)
    assert stored.claim_due_at == stored.created_at + timedelta(hours=4)


async def test_overdue_follow_up_visit_is_escalated_once(client, sessions, pump, make_user,
                                                         login):
    supervisor = await make_user("supervisor", jurisdiction="990103")
    caseworker = await login(await make_user("caseworker"))
    case_id, _ = await red_case_with_police_referral(sessions, pump)
    for step in ({"event": "register"}, {"event": "assess"}):
        await client.post(f"/api/v1/cases/{case_id}/events", json=step, headers=caseworker)
    await client.post(f"/api/v1/cases/{case_id}/assessment", json={"risk_level": "red"},
                      headers=caseworker)
    for step in ({"event": "handle"}, {"event": "follow_up"}):
        moved = await client.post(f"/api/v1/cases/{case_id}/events", json=step,
                                  headers=caseworker)
        assert moved.status_code == 200, moved.text
    async with sessions() as session:
        visit = (await session.execute(select(Visit).where(
            Visit.case_id == case_id, Visit.visited_at.is_(None)))).scalar_one()
        case = await session.get(Case, case_id)
    assert visit.due_at - case.updated_at == timedelta(days=7)  # red: weekly
    for days in (6, 8, 9):
        async with sessions() as session, session.begin():
            await sweep_visits(session, visit.due_at + timedelta(days=days - 7))
    assert (await _events(sessions, case_id)).count("visit_overdue") == 1
    detail = (await client.get(f"/api/v1/cases/{case_id}", headers=caseworker)).json()
    planned = [v for v in detail["visits"] if v["visited_at"] is None]
    assert len(planned) == 1 and planned[0]["due_at"]
    assert supervisor.id in await notified(sessions, case_id, "visit_overdue")
