"""The help plan (一案一策) through the API: needs → lead departments' referrals, approval of
red and orange plans, re-planning that withdraws with a reason, refusals in Chinese."""

from datetime import timedelta

from sqlalchemy import select

from db.models import CaseEvent, Notification, Referral
from dispatch.referrals.deadlines import sweep_referrals
from tests.fixtures.reports import report
from workflows.referrals.deadlines import deadline_points, parse_window


async def _assessed_case(client, pump, headers, level: str, categories=("dropout",)) -> int:
    created = (
        await client.post(
            "/api/v1/reports", json=report(categories=list(categories), situations=[])
        )
    ).json()
    await pump()
    case_id = created["case_id"]
    await client.post(f"/api/v1/cases/{case_id}/events", headers=headers, json={"event": "assess"})
    done = await client.post(
        f"/api/v1/cases/{case_id}/assessment", headers=headers, json={"risk_level": level}
    )
    assert done.status_code == 200, done.text
    return case_id


async def _referrals(sessions, case_id: int) -> dict[str, tuple[int, str, str | None]]:
    async with sessions() as session:
        rows = (
            await session.execute(select(Referral).where(Referral.case_id == case_id))
        ).scalars()
        return {r.department_code: (r.id, r.status, r.withdraw_reason) for r in rows}


async def test_a_yellow_plan_sends_each_need_to_its_lead_department(
    client, make_user, login, pump, sessions
):
    caseworker = await login(await make_user("caseworker"))
    case_id = await _assessed_case(client, pump, caseworker, "yellow")
    before = await _referrals(sessions, case_id)
    assert "education" in before  # routing sent the dropout case to education already

    plan = await client.post(
        f"/api/v1/cases/{case_id}/plan",
        headers=caseworker,
        json={"needs": ["教育救助", "医疗救治", "生活救助"]},
    )
    assert plan.status_code == 200, plan.text
    body = plan.json()
    assert body["pending_approval"] is False
    items = {i["need"]: i for i in body["items"]}
    assert {n: i["department"] for n, i in items.items()} == {
        "教育救助": "education",
        "医疗救治": "health",
        "生活救助": "civil_affairs",
    }
    after = await _referrals(sessions, case_id)
    # The open education referral is reused, not doubled; health gets a new one.
    assert items["教育救助"]["referral_id"] == before["education"][0]
    assert items["医疗救治"]["referral_id"] == after["health"][0]
    assert after["health"][1] == "queued"
    shown = (await client.get(f"/api/v1/cases/{case_id}/plan", headers=caseworker)).json()
    assert {i["need"]: i["referral_status"] for i in shown["items"]}["医疗救治"] == "queued"
    assert all(i["due_at"] for i in shown["items"])


async def test_an_orange_plan_waits_for_a_supervisor(client, make_user, login, pump, sessions):
    caseworker = await login(await make_user("caseworker"))
    supervisor_user = await make_user("supervisor", jurisdiction="990100")
    case_id = await _assessed_case(client, pump, caseworker, "orange")
    plan = await client.post(
        f"/api/v1/cases/{case_id}/plan", headers=caseworker, json={"needs": ["法律援助"]}
    )
    assert plan.status_code == 200
    assert plan.json()["pending_approval"] is True
    assert [i["referral_id"] for i in plan.json()["items"]] == [None]
    assert "justice" not in await _referrals(sessions, case_id)
    async with sessions() as session:
        asked = await session.scalar(
            select(Notification.id).where(
                Notification.user_id == supervisor_user.id,
                Notification.kind == "plan_approval",
                Notification.case_id == case_id,
            )
        )
    assert asked is not None

    not_yours = await client.post(f"/api/v1/cases/{case_id}/plan/approve", headers=caseworker)
    assert not_yours.status_code == 403
    approved = await client.post(
        f"/api/v1/cases/{case_id}/plan/approve", headers=await login(supervisor_user)
    )
    assert approved.status_code == 200 and approved.json()["pending_approval"] is False
    justice = (await _referrals(sessions, case_id))["justice"]
    assert approved.json()["items"][0]["referral_id"] == justice[0]
    again = await client.post(
        f"/api/v1/cases/{case_id}/plan/approve", headers=await login(supervisor_user)
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "no_pending_plan"


async def test_a_new_plan_needs_a_reason_and_withdraws_what_it_drops(
    client, make_user, login, pump, sessions
):
    caseworker = await login(await make_user("caseworker"))
    case_id = await _assessed_case(client, pump, caseworker, "blue")
    first = await client.post(
        f"/api/v1/cases/{case_id}/plan",
        headers=caseworker,
        json={"needs": ["医疗救治", "法律援助"]},
    )
    assert first.status_code == 200
    bare = await client.post(
        f"/api/v1/cases/{case_id}/plan", headers=caseworker, json={"needs": ["医疗救治"]}
    )
    assert bare.status_code == 422 and bare.json()["error"]["code"] == "reason_required"
    second = await client.post(
        f"/api/v1/cases/{case_id}/plan",
        headers=caseworker,
        json={"needs": ["医疗救治"], "reason": "家属已自行委托律师"},
    )
    assert second.status_code == 200 and second.json()["version"] == 2
    refs = await _referrals(sessions, case_id)
    assert refs["justice"][1] == "withdrawn" and "家属已自行委托律师" in refs["justice"][2]
    assert refs["health"][1] == "queued"


async def test_plan_refusals_say_what_is_allowed(client, make_user, login, pump):
    caseworker = await login(await make_user("caseworker"))
    case_id = await _assessed_case(client, pump, caseworker, "blue")
    unknown = await client.post(
        f"/api/v1/cases/{case_id}/plan", headers=caseworker, json={"needs": ["算命"]}
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "unknown_need"
    assert "生活救助" in unknown.json()["error"]["message"]
    empty = await client.post(
        f"/api/v1/cases/{case_id}/plan", headers=caseworker, json={"needs": []}
    )
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "needs_required"
    liaison = await login(await make_user("liaison", "education", "990102"))
    assert (
        await client.post(
            f"/api/v1/cases/{case_id}/plan", headers=liaison, json={"needs": ["教育救助"]}
        )
    ).status_code == 403


async def test_the_plans_due_date_is_the_referrals_deadline_once_in_progress(
    client, make_user, login, pump, sessions
):
    """Claimed and started, the health referral must be delivered by the plan's 3 working
    days: warned before, 督办 at the date, 挂牌督办 at twice the window, then nothing more."""
    caseworker = await login(await make_user("caseworker"))
    supervisor = await make_user("supervisor", jurisdiction="990100")
    health = await login(await make_user("liaison", "health", "990102"))
    case_id = await _assessed_case(client, pump, caseworker, "yellow")
    plan = await client.post(
        f"/api/v1/cases/{case_id}/plan", headers=caseworker, json={"needs": ["医疗救治"]}
    )
    item = plan.json()["items"][0]
    referral_id = item["referral_id"]
    listed = await client.get(
        "/api/v1/referrals", params={"case_id": case_id}, headers=health
    )
    shown = {r["id"]: r for r in listed.json()["items"]}[referral_id]
    assert shown["plan_due_at"] is not None
    planned = (await client.get(f"/api/v1/cases/{case_id}/plan", headers=caseworker)).json()
    assert planned["items"][0]["due_at"] == shown["plan_due_at"]

    for step, body in (("claim", None), ("progress", {"note": "已联系卫健部门安排就医"})):
        moved = await client.post(
            f"/api/v1/referrals/{referral_id}/{step}", headers=health, json=body
        )
        assert moved.status_code == 200, moved.text
    async with sessions() as session:
        referral = await session.get(Referral, referral_id)
    assert referral.status == "in_progress" and referral.next_check_at is not None
    points = deadline_points(referral.plan_started_at, parse_window("3wd"))  # casework.toml
    assert referral.plan_due_at == points.due_at

    async def sweep(at) -> list[tuple[str, dict]]:
        while True:  # the whole test database's due referrals, 500 at a time
            async with sessions() as session, session.begin():
                if await sweep_referrals(session, at) < 500:
                    break
        async with sessions() as session:
            rows = await session.execute(
                select(CaseEvent.event, CaseEvent.data).where(
                    CaseEvent.case_id == case_id,
                    CaseEvent.event.in_(("deadline_warning", "escalated", "flagged")),
                )
            )
            return [(e, d) for e, d in rows if d.get("referral_id") == referral_id]

    assert await sweep(points.warn_at - timedelta(minutes=1)) == []
    assert [e for e, _ in await sweep(points.warn_at)] == ["deadline_warning"]
    assert [e for e, _ in await sweep(points.due_at)] == ["deadline_warning", "escalated"]
    events = await sweep(points.flag_at)
    assert [e for e, _ in events] == ["deadline_warning", "escalated", "flagged"]
    assert all(d["phase"] == "deliver" for _, d in events)
    async with sessions() as session:
        told = set((await session.execute(select(Notification.kind).where(
            Notification.user_id == supervisor.id, Notification.referral_id == referral_id
        ))).scalars())
        assert (await session.get(Referral, referral_id)).next_check_at is None
    assert {"escalated", "flagged"} <= told
