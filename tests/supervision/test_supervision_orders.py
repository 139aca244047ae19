"""督查 by hand: 挂牌督办 with a rectification deadline, the department's answer, the
supervisor's send-back and formal lift, overdue rectifications escalating, 重点个案 with the
leadership meeting's minutes, 督导 notes whose required actions become orders."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from db.models import CaseEvent
from dispatch.supervision.service import sweep_orders
from tests.fixtures.lookups import notified
from tests.fixtures.referrals import red_case_with_police_referral


async def _events(sessions, case_id: int) -> list[str]:
    async with sessions() as session:
        return list(
            (
                await session.execute(
                    select(CaseEvent.event)
                    .where(CaseEvent.case_id == case_id)
                    .order_by(CaseEvent.id)
                )
            ).scalars()
        )


def _due(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


async def test_order_answer_send_back_answer_lift_all_on_the_timeline(
    client, sessions, pump, make_user, login
):
    center = await login(await make_user("supervisor", jurisdiction="990100"))
    liaison_user = await make_user("liaison", "police", "990103001")
    liaison = await login(liaison_user)
    education = await login(await make_user("liaison", "education", "990103"))
    case_id, referral = await red_case_with_police_referral(sessions, pump)

    opened = await client.post(
        "/api/v1/supervision/orders",
        headers=center,
        json={"referral_id": referral.id, "reason": "红色案件超时未认领", "due_at": _due(48)},
    )
    assert opened.status_code == 201, opened.text
    order = opened.json()
    assert (order["status"], order["department"], order["case_id"]) == ("open", "police", case_id)
    again = await client.post(
        "/api/v1/supervision/orders",
        headers=center,
        json={"referral_id": referral.id, "reason": "再次督办", "due_at": _due(48)},
    )
    assert again.status_code == 409

    seen = await client.get("/api/v1/supervision/orders", headers=liaison)
    assert order["id"] in [o["id"] for o in seen.json()["items"]]
    other = await client.get("/api/v1/supervision/orders", headers=education)
    assert order["id"] not in [o["id"] for o in other.json()["items"]]
    # Another department cannot answer it, nor the supervisor lift what is not answered.
    path = f"/api/v1/supervision/orders/{order['id']}"
    assert (
        await client.post(path + "/answer", headers=education, json={"text": "x"})
    ).status_code == 404
    early = await client.post(path + "/lift", headers=center, json={"text": "解除"})
    assert early.status_code == 409
    assert "不允许" in early.json()["error"]["message"]
    assert (
        await client.post(path + "/answer", headers=center, json={"text": "x"})
    ).status_code == 403

    answered = await client.post(
        path + "/answer", headers=liaison, json={"text": "已安排民警入户核查"}
    )
    assert answered.json()["status"] == "answered"
    back = await client.post(path + "/send-back", headers=center, json={"text": "请补充处置结果"})
    assert back.json()["status"] == "open"
    await client.post(path + "/answer", headers=liaison, json={"text": "已出具告诫书"})
    lifted = await client.post(path + "/lift", headers=center, json={"text": "整改到位"})
    assert lifted.json()["status"] == "lifted" and lifted.json()["lifted_at"]

    events = [e for e in await _events(sessions, case_id) if e.startswith("supervision_")]
    assert events == [
        "supervision_ordered",
        "supervision_answered",
        "supervision_sent_back",
        "supervision_answered",
        "supervision_lifted",
    ]
    told = set(await notified(sessions, case_id, "supervision_ordered"))
    assert liaison_user.id in told


async def test_overdue_rectification_escalates_once_per_stage(
    client, sessions, pump, make_user, login
):
    center_user = await make_user("supervisor", jurisdiction="990100")
    center = await login(center_user)
    district_police = await make_user("supervisor", "police", jurisdiction="990103")
    case_id, _ = await red_case_with_police_referral(sessions, pump)
    opened = await client.post(
        "/api/v1/supervision/orders",
        headers=center,
        json={
            "case_id": case_id,
            "department": "police",
            "reason": "未按要求处置",
            "due_at": _due(1),
        },
    )
    assert opened.status_code == 201, opened.text
    order = opened.json()
    assert order["office_id"] is not None  # the case's police referral's office

    now = datetime.now(UTC)
    for hours in (0.5, 1.5, 1.6, 2.5, 3.0):
        async with sessions() as session, session.begin():
            await sweep_orders(session, now + timedelta(hours=hours))
    events = await _events(sessions, case_id)
    assert events.count("supervision_overdue") == 1
    assert events.count("supervision_escalated") == 1
    told = set(await notified(sessions, case_id, "supervision_overdue"))
    assert {center_user.id, district_police.id} <= told

    listed = await client.get("/api/v1/supervision/orders?status=open", headers=center)
    mine = next(o for o in listed.json()["items"] if o["id"] == order["id"])
    assert mine["escalation"] == 2


async def test_orders_refuse_what_would_do_nothing_with_chinese_reasons(
    client, sessions, pump, make_user, login
):
    center = await login(await make_user("supervisor", jurisdiction="990100"))
    caseworker = await login(await make_user("caseworker", jurisdiction="990100"))
    case_id, referral = await red_case_with_police_referral(sessions, pump)

    async def order(headers, **body):
        return await client.post(
            "/api/v1/supervision/orders", headers=headers, json={"reason": "督办", **body}
        )

    too_far = await order(center, referral_id=referral.id, due_at=_due(24 * 100))
    assert too_far.status_code == 422
    assert "最长为90天" in too_far.json()["error"]["message"]
    past = await order(center, referral_id=referral.id, due_at=_due(-1))
    assert past.status_code == 422
    nobody = await order(center, case_id=case_id, department="no_such", due_at=_due(5))
    assert nobody.status_code == 422
    assert (
        await order(caseworker, referral_id=referral.id, due_at=_due(5))
    ).status_code == 403


async def test_key_case_list_minutes_and_clear(client, sessions, pump, make_user, login):
    center = await login(await make_user("supervisor", jurisdiction="990100"))
    district = await login(await make_user("supervisor", jurisdiction="990102"))
    case_id, _ = await red_case_with_police_referral(sessions, pump)
    flagged = await client.post(
        "/api/v1/supervision/key-cases",
        headers=center,
        json={"case_id": case_id, "reason": "多部门推诿，需领导研究"},
    )
    assert flagged.status_code == 201, flagged.text
    assert (
        await client.post(
            "/api/v1/supervision/key-cases",
            headers=center,
            json={"case_id": case_id, "reason": "再次"},
        )
    ).status_code == 409
    minutes = await client.post(
        f"/api/v1/supervision/key-cases/{case_id}/minutes",
        headers=center,
        json={
            "meeting_on": "2026-06-30",
            "meeting": "上半年联席会议",
            "minutes": "听取公安、民政汇报",
            "decisions": "民政牵头临时监护",
        },
    )
    assert minutes.status_code == 201
    listed = (await client.get("/api/v1/supervision/key-cases", headers=center)).json()
    mine = next(i for i in listed["items"] if i["case_id"] == case_id)
    assert mine["minutes"][0]["decisions"] == "民政牵头临时监护"
    # Another district's supervisor does not see the case on their list.
    theirs = (await client.get("/api/v1/supervision/key-cases", headers=district)).json()
    assert case_id not in [i["case_id"] for i in theirs["items"]]
    cleared = await client.post(
        f"/api/v1/supervision/key-cases/{case_id}/clear",
        headers=center,
        json={"reason": "监护已落实"},
    )
    assert cleared.status_code == 204
    listed = (await client.get("/api/v1/supervision/key-cases", headers=center)).json()
    assert case_id not in [i["case_id"] for i in listed["items"]]
    events = await _events(sessions, case_id)
    assert ["key_case_flagged", "key_case_minute", "key_case_cleared"] == [
        e for e in events if e.startswith("key_case")
    ]


async def test_a_supervision_note_turns_required_actions_into_orders(
    client, sessions, pump, make_user, login
):
    center = await login(await make_user("supervisor", jurisdiction="990100"))
    civil = await login(await make_user("liaison", "civil_affairs", "990103"))
    case_id, _ = await red_case_with_police_referral(sessions, pump)
    note = await client.post(
        f"/api/v1/supervision/cases/{case_id}/notes",
        headers=center,
        json={
            "findings": "评估不充分，未入户",
            "actions": [
                {"text": "三日内入户评估", "department": "civil_affairs", "due_at": _due(72)},
                {"text": "补充监护情况", "department": "civil_affairs", "due_at": _due(96)},
            ],
        },
    )
    assert note.status_code == 201, note.text
    order_ids = [a["order_id"] for a in note.json()["actions"]]
    assert len(order_ids) == 2
    seen = (await client.get("/api/v1/supervision/orders", headers=civil)).json()["items"]
    assert set(order_ids) <= {o["id"] for o in seen}
    assert "supervision_note" in await _events(sessions, case_id)


async def test_scorecard_api_shape_and_who_may_read_it(client, sessions, pump, make_user, login):
    center = await login(await make_user("supervisor", jurisdiction="990100"))
    police = await login(await make_user("supervisor", "police", jurisdiction="990100"))
    liaison = await login(await make_user("liaison", "police", "990103001"))
    await red_case_with_police_referral(sessions, pump)
    whole = await client.get("/api/v1/supervision/scorecard", headers=center)
    assert whole.status_code == 200, whole.text
    item = whole.json()["items"][0]
    for field in (
        "department",
        "office",
        "received",
        "claimed",
        "claimed_on_time",
        "acted_on_time",
        "median_minutes_to_claim",
        "escalated",
        "flagged",
        "returned",
    ):
        assert field in item
    own = (await client.get("/api/v1/supervision/scorecard", headers=police)).json()
    assert own["items"] and {i["department"] for i in own["items"]} == {"police"}
    assert (await client.get("/api/v1/supervision/scorecard", headers=liaison)).status_code == 403
    bad = await client.get(
        "/api/v1/supervision/scorecard?since=2026-05-01&until=2026-04-01", headers=center
    )
    assert bad.status_code == 422 and "不能早于" in bad.json()["error"]["message"]
