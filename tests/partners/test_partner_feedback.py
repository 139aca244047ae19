"""Result feedback to partners (办理结果反馈): signed status messages when the case is
accepted, handled and closed (退回 when it is not ours), through the outbox and RQ, retried
until the partner takes them, in order and once per status, with every attempt on record."""

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from channels.partners.callbacks import drain
from db import clock
from db.models import AuditLog
from db.partners import Partner, PartnerMessage
from tests.fixtures.partners import order, undelivered

pytest_plugins = ("tests.fixtures.partners", "tests.fixtures.console")


async def _event(client, case_id: int, headers, event: str, reason: str | None = None):
    body = {"event": event} | ({"reason": reason} if reason else {})
    response = await client.post(f"/api/v1/cases/{case_id}/events", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response


async def _handle_and_close(client, case_id: int, caseworker, outcome: str) -> None:
    await _event(client, case_id, caseworker, "assess")
    assessed = await client.post(
        f"/api/v1/cases/{case_id}/assessment",
        json={"risk_level": "yellow", "guardianship": "监护基本正常", "needs": ["心理咨询"]},
        headers=caseworker,
    )
    assert assessed.status_code == 200, assessed.text
    await _event(client, case_id, caseworker, "handle")
    await _event(client, case_id, caseworker, "follow_up")
    await _event(client, case_id, caseworker, "close", outcome)


async def _partner_id(sessions, source: str) -> int:
    async with sessions() as session:
        return await session.scalar(select(Partner.id).where(Partner.source == source))


async def test_the_partner_hears_accepted_handling_closed_once_each_signed(
    client, post_forward, partner_server, pump, make_user, login, sessions
):
    fake = await partner_server("12345")
    body = order()
    ack = (await post_forward("12345", body)).json()
    await pump()  # registered → 受理
    caseworker = await login(await make_user("caseworker"))
    await _handle_and_close(
        client, ack["case_id"], caseworker, "父亲已被公安训诫，孩子由祖母照看。"
    )
    await pump()
    await pump()  # nothing more: every status was sent once

    statuses = [m["status"] for m in fake.taken]
    assert statuses == ["accepted", "handling", "closed"]
    assert all(r.signature_ok for r in fake.received)
    assert len({m["message_id"] for m in fake.taken}) == 3
    accepted, handling, closed = fake.taken
    assert accepted["external_id"] == body["external_id"]
    assert accepted["receipt_code"] == ack["receipt_code"] and accepted["status_label"] == "已受理"
    assert ack["receipt_code"] in accepted["message"]
    assert handling["message"].startswith("已转介") and "相关部门" not in handling["message"]
    assert closed["message"] == "已办结。处理结果：父亲已被公安训诫，孩子由祖母照看"
    assert all(
        r.headers["X-Hotline-Message-Id"] == str(r.message["message_id"]) for r in fake.received
    )
    assert await undelivered(sessions) == 0

    # An update of the order is answered through the original, not as a new order.
    await post_forward("12345", order(original_external_id=body["external_id"]))
    await pump()
    assert [m["status"] for m in fake.taken] == ["accepted", "handling", "closed"]


async def test_a_burst_of_orders_wakes_the_partners_line_once_and_every_order_hears(
    post_forward, partner_server, pump, sessions
):
    """Orders routed before the relay's next pass share one wake-up of the partner's line:
    one delivery job takes every 已受理, in the orders' order."""
    fake = await partner_server("12345")
    bodies = [order() for _ in range(3)]
    for body in bodies:
        await post_forward("12345", body)
    ran = await pump()

    assert [topic for topic, _ in ran].count("partner.deliver") == 1
    assert [(m["status"], m["external_id"]) for m in fake.taken] == [
        ("accepted", body["external_id"]) for body in bodies
    ]
    assert await undelivered(sessions) == 0


async def test_an_order_that_is_not_ours_is_returned_with_the_reason(
    client, post_forward, partner_server, pump, make_user, login
):
    fake = await partner_server("12345")
    ack = (await post_forward("12345", order(about_minor=False, child={"age": 40}))).json()
    await pump()
    assert fake.received == []  # not registered: nothing accepted yet
    operator = await login(await make_user("operator"))
    await _event(
        client, ack["case_id"], operator, "invalidate", "不涉及未成年人，属劳动纠纷，请转人社部门"
    )
    await pump()
    assert [m["status"] for m in fake.taken] == ["returned"]
    assert fake.taken[0]["message"].startswith("退回：不涉及未成年人，属劳动纠纷，请转人社部门")


async def test_a_failing_then_hanging_partner_is_retried_until_it_takes_the_message(
    client, post_forward, partner_server, pump, sessions, make_user, login
):
    fake = await partner_server("110", script=[500, "hang"])
    ack = (await post_forward("110", order())).json()
    await pump()  # registration → 受理 → first try: 500
    assert [r.message["status"] for r in fake.received] == ["accepted"]
    async with sessions() as session:
        message = await session.scalar(
            select(PartnerMessage).where(PartnerMessage.case_id == ack["case_id"])
        )
    assert message.delivered_at is None and message.last_error == "http_500"
    assert message.next_attempt_at > clock.now()  # waits out its backoff

    partner_id = await _partner_id(sessions, "110")
    key = client._transport.app.state.runtime.secret_key
    later = message.next_attempt_at + timedelta(seconds=1)
    early = await drain(sessions, key, partner_id, now=lambda: later - timedelta(seconds=5))
    assert early.delivered == early.failed == 0  # not due yet: nothing sent
    hung = await drain(sessions, key, partner_id, now=lambda: later, request_timeout=0.3)
    assert hung.failed == 1
    recovered = await drain(sessions, key, partner_id, now=lambda: later + timedelta(hours=1))
    assert recovered.delivered == 1
    assert [m["status"] for m in fake.taken] == ["accepted"]

    # Staff see every attempt, and the line is clear.
    supervisor = await login(await make_user("supervisor"))
    detail = (
        await client.get(f"/api/v1/partners/messages/{message.id}", headers=supervisor)
    ).json()
    assert [a["error"] for a in detail["attempt_log"]] == ["http_500", "timeout", None]
    assert [a["http_status"] for a in detail["attempt_log"]] == [500, None, 200]
    assert detail["delivered_at"] and detail["status_label"] == "已受理"
    async with sessions() as session:
        read = await session.scalar(
            select(AuditLog).where(
                AuditLog.action == "partner.message.read",
                AuditLog.object_id == str(ack["case_id"]),
            )
        )
    assert read is not None and read.actor.startswith("supervisor:") and read.ip
    lines = (await client.get("/api/v1/partners", headers=supervisor)).json()["items"]
    assert next(p for p in lines if p["source"] == "110")["undelivered"] == 0
    liaison = await login(await make_user("liaison", "police"))
    assert (await client.get("/api/v1/partners", headers=liaison)).status_code == 403


async def test_a_partner_down_for_an_hour_gets_everything_afterwards_in_order_once(
    client, post_forward, partner_server, pump, sessions, make_user, login
):
    fake = await partner_server("12355", script=[503] * 1000)
    caseworker = await login(await make_user("caseworker"))
    acks = [(await post_forward("12355", order(risk="中"))).json() for _ in range(3)]
    await pump()
    for ack in acks[:2]:
        await _handle_and_close(client, ack["case_id"], caseworker, "已妥善处置")
    await pump()
    assert {m.message["status"] for m in fake.received} == {"accepted"}  # only the head tried
    assert fake.taken == []

    partner_id = await _partner_id(sessions, "12355")
    key = client._transport.app.state.runtime.secret_key
    start = clock.now()
    for minute in range(0, 61, 5):  # an hour of tries, all refused
        await drain(sessions, key, partner_id, now=lambda m=minute: start + timedelta(minutes=m))
    tries = len(fake.received)
    assert 5 <= tries < 40  # backing off, not hammering
    assert {m.message["message_id"] for m in fake.received} == {
        fake.received[0].message["message_id"]
    }

    fake.script.clear()  # the partner is back; three jobs race for its line
    back = start + timedelta(hours=2)
    results = await asyncio.gather(
        *(drain(sessions, key, partner_id, now=lambda: back) for _ in range(3))
    )
    assert sum(r.delivered for r in results) == 7
    await drain(sessions, key, partner_id, now=lambda: back)  # nothing left
    ids = [m["message_id"] for m in fake.taken]
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == 7
    by_case: dict[int, list[str]] = {}
    for m in fake.taken:
        by_case.setdefault(m["case_id"], []).append(m["status"])
    assert by_case == {
        acks[0]["case_id"]: ["accepted", "handling", "closed"],
        acks[1]["case_id"]: ["accepted", "handling", "closed"],
        acks[2]["case_id"]: ["accepted"],
    }
    assert await undelivered(sessions) == 0


async def test_satisfaction_is_recorded_and_counted(
    client, post_forward, pump, make_user, login, console_client, sessions
):
    acks = []
    for _ in range(3):
        body = order()
        acks.append((body, (await post_forward("12345", body)).json()))
    for (body, _), said in zip(acks, ("满意", "非常满意", 1), strict=True):
        answer = await post_forward(
            "12345",
            {"external_id": body["external_id"], "satisfaction": said},
            path="/satisfaction",
        )
        assert answer.status_code == 200, answer.text
    # Sent again with another score, the 回访 replaces the first.
    replaced = await post_forward(
        "12345",
        {
            "external_id": acks[0][0]["external_id"],
            "satisfaction": "基本满意",
            "comment": "处理及时",
        },
        path="/satisfaction",
    )
    assert replaced.json()["label"] == "基本满意" and replaced.json()["score"] == 3
    async with sessions() as session:
        written = await session.scalar(
            select(func.count()).where(
                AuditLog.action == "satisfaction.record",
                AuditLog.object_id == str(acks[0][1]["case_id"]),
                AuditLog.actor == "partner:12345",
            )
        )
    assert written == 2
    unknown = await post_forward(
        "12345", {"external_id": "NO-SUCH-ORDER", "satisfaction": "满意"}, path="/satisfaction"
    )
    assert unknown.status_code == 404
    bad = await post_forward(
        "12345",
        {"external_id": acks[0][0]["external_id"], "satisfaction": "还行"},
        path="/satisfaction",
    )
    assert bad.status_code == 422 and "satisfaction" in bad.json()["error"]["fields"]

    supervisor = await login(await make_user("supervisor"))
    stats = (await client.get("/api/v1/forwards/stats", headers=supervisor)).json()
    row = next(i for i in stats["items"] if i["source"] == "12345")
    assert row["satisfaction"]["非常满意"] >= 1 and row["satisfaction"]["基本满意"] >= 1
    assert row["satisfaction"]["非常不满意"] >= 1 and row["satisfaction_count"] >= 3
    assert 0 < row["satisfaction_rate"] < 1 and row["orders"] >= 3
    liaison = await login(await make_user("liaison", "education"))
    assert (await client.get("/api/v1/forwards/stats", headers=liaison)).status_code == 403

    # The supervisors' statistics page shows the same figures to the center only.
    center = await console_client(await make_user("supervisor"))
    page = (await center.get("/console/stats")).text
    assert "对接平台工单与回访满意度" in page and "12345政务服务便民热线" in page
    department = await console_client(await make_user("supervisor", "police"))
    assert "回访满意度" not in (await department.get("/console/stats")).text


async def test_a_merged_order_hears_the_outcome_of_the_case_it_joined(
    client, post_forward, partner_server, pump, make_user, login
):
    fake = await partner_server("12345")
    first = order()
    second = order(content="另一位邻居也反映同一户家庭孩子被打。")
    kept = (await post_forward("12345", first)).json()
    joined = (await post_forward("12345", second)).json()
    await pump()
    caseworker = await login(await make_user("caseworker"))
    merged = await client.post(
        f"/api/v1/cases/{joined['case_id']}/events",
        json={"event": "merge", "into_case_id": kept["case_id"], "reason": "同一户家庭"},
        headers=caseworker,
    )
    assert merged.status_code == 200, merged.text
    await pump()
    await _handle_and_close(client, kept["case_id"], caseworker, "已处置")
    await pump()
    heard: dict[str, list[str]] = {}
    for m in fake.taken:
        heard.setdefault(m["external_id"], []).append(m["status"])
    assert heard == {
        first["external_id"]: ["accepted", "handling", "closed"],
        second["external_id"]: ["accepted", "merged", "handling", "closed"],
    }
