"""110 / 12345 / 12355 forwards, as the partners use them: signed, idempotent, mapped into
our report, updates joining their case, and the orders that are not ours."""

import asyncio
import json
import time

from sqlalchemy import func, select

from db.models import Case, CaseEvent, Referral, Report
from tests.fixtures.partners import SECRETS, order

pytest_plugins = ("tests.fixtures.partners",)


async def _reports(sessions, source: str, external_id: str) -> int:
    async with sessions() as session:
        return await session.scalar(
            select(func.count()).where(Report.channel == source, Report.external_id == external_id)
        )


async def test_a_signed_order_is_acknowledged_once_and_registered(
    client, post_forward, pump, sessions, make_user, login
):
    body = order()
    first = await post_forward("12345", body)
    assert first.status_code == 202, first.text
    ack = first.json()
    assert set(ack) == {"receipt_code", "case_id", "duplicate"} and ack["duplicate"] is False
    # The partner retries (its answer was lost): the same receipt and case, nothing new.
    again = await post_forward("12345", body)
    assert again.status_code == 202
    assert again.json() == {**ack, "duplicate": True}
    assert await _reports(sessions, "12345", body["external_id"]) == 1

    await pump()
    caseworker = await login(await make_user("caseworker"))
    case = (await client.get(f"/api/v1/cases/{ack['case_id']}", headers=caseworker)).json()
    assert case["state"] == "reported"  # forwards arrive complete: registered and routed
    # "幸福里小区3栋": the estate's alias names the community, the deepest place.
    assert case["referrals"] and case["jurisdiction"] == "990102001001"
    receipt = await client.get(f"/api/v1/receipts/{ack['receipt_code']}")
    assert receipt.status_code == 200 and receipt.json()["status"] == "received"


async def test_signatures_missing_wrong_stale_or_replayed_are_refused(post_forward, sessions, app):
    from tests.fixtures.partners import set_partner

    body = order()
    raw = json.dumps(body, ensure_ascii=False).encode()
    now = time.time()
    cases = {
        "missing": dict(headers={"X-Hotline-Signature": None, "X-Hotline-Timestamp": None}),
        "no signature": dict(headers={"X-Hotline-Signature": None}),
        "wrong secret": dict(secret="not-the-partners-secret-at-all"),
        "another partner's secret": dict(secret=SECRETS["110"]),
        "stale": dict(at=now - 301),
        # Past 300 s with a margin: on a busy machine the loop reaches this one seconds later.
        "from the future": dict(at=now + 330),
        "garbage timestamp": dict(headers={"X-Hotline-Timestamp": "yesterday"}),
    }
    for name, options in cases.items():
        response = await post_forward("12345", raw, **options)
        assert response.status_code == 401, name
        error = response.json()["error"]
        assert error["code"].startswith("signature_"), name
        assert body["caller_phone"] not in response.text and "小明" not in response.text
        assert any("\u4e00" <= ch <= "\u9fff" for ch in error["message"]), name
    # A body changed on the way (the signature was made over another one).
    tampered = raw.replace("小明".encode(), "小红".encode())
    good = await post_forward("12345", raw)
    headers = {k: v for k, v in good.request.headers.items() if k.startswith("x-hotline")}
    changed = await post_forward("12345", tampered, headers=headers)
    assert changed.status_code == 401 and changed.json()["error"]["code"] == "signature_invalid"
    assert await _reports(sessions, "12345", body["external_id"]) == 1  # only the good one

    # A replay of the exact request inside the window is the same order (duplicate), and
    # outside the window it is refused.
    replay_at = now - 200
    first = await post_forward("12345", order(external_id=body["external_id"] + "-r"), at=replay_at)
    replayed = await post_forward(
        "12345", order(external_id=body["external_id"] + "-r"), at=replay_at
    )
    assert first.status_code == 202
    assert replayed.status_code == 202 and replayed.json()["duplicate"] is True
    late = await post_forward("12345", order(external_id=body["external_id"] + "-s"), at=now - 600)
    assert late.status_code == 401 and late.json()["error"]["code"] == "signature_expired"

    # Unknown sources are 404; a rotated secret is honoured at once, the old one refused.
    assert (await post_forward("12345", raw, path="x")).status_code == 404
    await set_partner(app, "12355", secret="a-brand-new-secret-for-12355")
    try:
        old = await post_forward("12355", order(), secret=SECRETS["12355"])
        assert old.status_code == 401
        new = await post_forward("12355", order(), secret="a-brand-new-secret-for-12355")
        assert new.status_code == 202
    finally:
        await set_partner(app, "12355")


async def test_concurrent_twins_are_one_report(post_forward, sessions):
    body = order()
    answers = await asyncio.gather(*(post_forward("110", body) for _ in range(20)))
    assert {a.status_code for a in answers} == {202}
    payloads = [a.json() for a in answers]
    assert sum(not p["duplicate"] for p in payloads) == 1
    assert len({(p["receipt_code"], p["case_id"]) for p in payloads}) == 1
    assert await _reports(sessions, "110", body["external_id"]) == 1


async def test_each_partners_fields_are_mapped(post_forward, pump, sessions):
    # 110: danger in progress → an emergency, police at once.
    police_order = order(
        in_progress=True, police_on_scene=True, incident_type="家庭暴力", jurisdiction="990102001"
    )
    ack = (await post_forward("110", police_order)).json()
    # 12345: 特急; a code we do not know, but an address we can place; 女 as gender.
    hotline_order = order(
        urgency="特急",
        appeal_type="求助",
        jurisdiction="420102",
        address="湖西区湖滨街道湖滨村5组",
        child={"name": "小芳", "age": 6, "gender": "女"},
        caller_phone="not a phone",
    )
    ack2 = (await post_forward("12345", hotline_order)).json()
    # 12355: risk 高 is urgent but not an emergency; no address, no code: the city.
    youth_order = order(risk="高", address=None, jurisdiction=None, child=None)
    ack3 = (await post_forward("12355", youth_order)).json()
    await pump()
    async with sessions() as session:

        def case(i):
            return session.get(Case, i)

        def report(i):
            return session.scalar(select(Report).where(Report.case_id == i))

        c1, r1 = await case(ack["case_id"]), await report(ack["case_id"])
        assert c1.emergency and r1.in_danger_now and c1.jurisdiction_code == "990102001"
        assert r1.description.startswith("【110报警服务台转办·特急")
        assert "民警已到场" in r1.description and "警情类别：家庭暴力" in r1.description
        assert r1.reporter == {"name": "张女士", "phone": "+8613800138000"}
        assert r1.child["name"] == "小明" and r1.raw["incident_type"] == "家庭暴力"
        police = await session.scalar(
            select(func.count()).where(
                Referral.case_id == c1.id, Referral.department_code == "police"
            )
        )
        assert police == 1

        c2, r2 = await case(ack2["case_id"]), await report(ack2["case_id"])
        assert c2.emergency and c2.jurisdiction_code == "990103001001"
        assert r2.child == {
            "name": "小芳",
            "age": 6,
            "gender": "female",
            "address": "湖西区湖滨街道湖滨村5组",
        }
        assert r2.reporter_phone is None and r2.raw["caller_phone"] == "not a phone"

        c3, r3 = await case(ack3["case_id"]), await report(ack3["case_id"])
        assert not c3.emergency and c3.jurisdiction_code == "990100"
        assert r3.description.startswith("【12355青少年服务台转办·紧急】")


async def test_bad_orders_get_field_errors_in_chinese(post_forward, sessions):
    for body, field in (
        ({"content": "x", "received_at": "2026-11-22T10:00:00+08:00"}, "external_id"),
        (order(content=""), "content"),
        (order(received_at="昨天"), "received_at"),
        (order(child={"age": -1}), "child.age"),
    ):
        response = await post_forward("12345", body)
        assert response.status_code == 422, body
        error = response.json()["error"]
        assert field in error["fields"] and "昨天" not in response.text
    not_json = await post_forward("12345", b"{not json")
    assert not_json.status_code == 400
    listed = await post_forward("12345", b"[]")
    assert listed.status_code == 422
    wrong_type = await post_forward("12345", order(), headers={"content-type": "text/plain"})
    assert wrong_type.status_code == 415


async def test_an_update_joins_its_order_and_raises_the_urgency(post_forward, pump, sessions):
    first = order(urgency="一般")
    ack = (await post_forward("12345", first)).json()
    await pump()
    update = order(
        original_external_id=first["external_id"],
        urgency="特急",
        content="来电人再次来电：孩子现在正在被打。",
    )
    answer = await post_forward("12345", update)
    assert answer.status_code == 202
    joined = answer.json()
    assert joined["case_id"] == ack["case_id"] and joined["duplicate"] is False
    assert joined["receipt_code"] != ack["receipt_code"]  # each order keeps its own receipt
    again = (await post_forward("12345", update)).json()
    assert again == {**joined, "duplicate": True}
    await pump()
    async with sessions() as session:
        case = await session.get(Case, ack["case_id"])
        events = list(
            (
                await session.execute(
                    select(CaseEvent.event)
                    .where(CaseEvent.case_id == case.id)
                    .order_by(CaseEvent.id)
                )
            ).scalars()
        )
        police = await session.scalar(
            select(func.count()).where(
                Referral.case_id == case.id, Referral.department_code == "police"
            )
        )
    assert case.emergency and events.count("report_added") == 1
    assert events.count("emergency_raised") == 1 and police == 1

    # An update of an order we never had is not lost: it opens a case of its own.
    orphan = (await post_forward("12345", order(original_external_id="NEVER-SEEN"))).json()
    assert orphan["case_id"] != ack["case_id"] and orphan["duplicate"] is False


async def test_an_order_not_about_a_minor_waits_for_an_operator(
    post_forward, pump, client, make_user, login
):
    ack = (await post_forward("12345", order(about_minor=False, child={"age": 45}))).json()
    await pump()
    operator = await login(await make_user("operator"))
    case = (await client.get(f"/api/v1/cases/{ack['case_id']}", headers=operator)).json()
    assert case["state"] == "discovered" and case["referrals"] == []
