"""The mandatory reporter's JSON channel, receipts, and what lands in the database."""

import asyncio

import pytest
from sqlalchemy import func, select

from db.models import AuditLog, Case, CaseEvent, Outbox, Report
from tests.fixtures.reports import REPORT
from workflows.cases import receipts


def unique(description: str = REPORT["description"], **changes) -> dict:
    """A report with distinct content, so the double-submit guard does not merge tests."""
    import secrets

    body = {**REPORT, **changes}
    body["description"] = f"{description}（{secrets.token_hex(4)}）"
    return body


async def test_report_is_durable_with_case_event_outbox_and_audit(client, sessions):
    response = await client.post("/api/v1/reports", json=unique())
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"receipt_code", "report_id", "case_id"}
    assert receipts.normalize(body["receipt_code"]) is not None

    async with sessions() as session:
        case = await session.get(Case, body["case_id"])
        report = await session.get(Report, body["report_id"])
        assert case.state == "discovered"
        assert case.categories == ["domestic_violence"]
        # Ticked situation: mandatory. Not in danger by the reporter's word, but the text's
        # judgement may raise it, never lower it: the case holds the higher of the two.
        assert case.mandatory is True
        assert case.emergency is report.judgement["emergency"]
        assert case.jurisdiction_code == "990102001001"
        assert report.case_id == case.id
        assert report.reporter_phone == "+8613800138000"
        assert report.child["name"] == "王小明"
        events = (await session.execute(
            select(CaseEvent.event).where(CaseEvent.case_id == case.id))).scalars().all()
        assert events == ["intake"]
        outbox = (await session.execute(
            select(Outbox.topic, Outbox.payload).where(
                Outbox.payload["case_id"].as_string() == str(case.id)))).all()
        assert [o.topic for o in outbox] == ["case.intake"]
        audited = (await session.execute(
            select(func.count()).where(AuditLog.action == "report.create",
                                       AuditLog.object_id == str(case.id)))).scalar_one()
        assert audited == 1


async def test_danger_now_marks_the_case_an_emergency(client, sessions):
    response = await client.post("/api/v1/reports", json=unique(in_danger_now=True))
    async with sessions() as session:
        case = await session.get(Case, response.json()["case_id"])
    assert case.emergency is True


async def test_only_a_description_is_required(client):
    response = await client.post("/api/v1/reports", json={"description": "有个孩子在路边哭了一天"})
    assert response.status_code == 201


@pytest.mark.parametrize(
    "change, field",
    [
        ({"description": ""}, "description"),
        ({"description": "   "}, "description"),
        ({"description": "字" * 5001}, "description"),
        ({"reporter": {"role": "plumber"}}, "reporter.role"),
        ({"reporter": {"phone": "12345"}}, "reporter.phone"),
        ({"reporter": {"name": "名" * 101}}, "reporter.name"),
        ({"situations": [0]}, "situations"),
        ({"situations": [10]}, "situations"),
        ({"categories": ["aliens"]}, "categories"),
        ({"child": {"age": 18}}, "child.age"),
        ({"child": {"age": -1}}, "child.age"),
        ({"child": {"age": "nine"}}, "child.age"),
        ({"child": {"gender": "robot"}}, "child.gender"),
        ({"jurisdiction": "000000"}, "jurisdiction"),
        ({"in_danger_now": "maybe"}, "in_danger_now"),
    ],
)
async def test_each_invalid_field_gets_a_chinese_message(client, change, field):
    body = {**REPORT, **change}
    if "description" not in change:
        body = unique(**change)
    response = await client.post("/api/v1/reports", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in error["fields"][field])
    # The submitted values are never echoed back.
    assert "13800138000" not in response.text and "王小明" not in response.text


async def test_missing_description_and_unknown_fields(client):
    response = await client.post("/api/v1/reports", json={"child": {"name": "王小明"}})
    assert response.status_code == 422
    assert "description" in response.json()["error"]["fields"]
    response = await client.post("/api/v1/reports", json={**unique(), "ssn": "x"})
    assert response.status_code == 422


async def test_broken_json_wrong_type_and_oversized_bodies(client):
    response = await client.post(
        "/api/v1/reports", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"

    response = await client.post(
        "/api/v1/reports", content="描述", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"

    huge = unique(description="字" * 200_000)
    response = await client.post("/api/v1/reports", json=huge)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"

    async def chunks():
        for _ in range(100):
            yield b"x" * 10_000

    response = await client.post(
        "/api/v1/reports", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


async def test_double_click_gives_one_case(client, sessions):
    body = unique()
    first, second = await asyncio.gather(
        client.post("/api/v1/reports", json=body), client.post("/api/v1/reports", json=body)
    )
    third = await client.post("/api/v1/reports", json=body)
    assert first.status_code == second.status_code == third.status_code == 201
    assert first.json() == second.json() == third.json()
    async with sessions() as session:
        count = (await session.execute(
            select(func.count()).select_from(Report).where(
                Report.description == body["description"]))).scalar_one()
    assert count == 1


async def test_receipt_shows_status_and_time_only(client):
    created = (await client.post("/api/v1/reports", json=unique())).json()
    response = await client.get(f"/api/v1/receipts/{created['receipt_code']}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"receipt_code", "status", "updated_at"}
    assert body["status"] == "received"
    assert body["receipt_code"] == created["receipt_code"]
    for secret in ("王小明", "李老师", "13800138000", "淤青", "teacher"):
        assert secret not in response.text


async def test_receipt_lookup_is_forgiving_about_case_and_dashes(client):
    code = (await client.post("/api/v1/reports", json=unique())).json()["receipt_code"]
    sloppy = code.replace("-", " ").lower()
    response = await client.get(f"/api/v1/receipts/{sloppy}")
    assert response.status_code == 200


async def test_mistyped_and_unknown_receipts(client):
    code = (await client.post("/api/v1/reports", json=unique())).json()["receipt_code"]
    raw = code.replace("-", "")
    wrong = raw[:3] + ("2" if raw[3] != "2" else "3") + raw[4:]
    response = await client.get(f"/api/v1/receipts/{wrong}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "receipt_invalid"

    unknown = receipts.new_code()
    response = await client.get(f"/api/v1/receipts/{unknown}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "receipt_not_found"

    response = await client.get("/api/v1/receipts/" + "A" * 500)
    assert response.status_code == 404


def test_receipt_codes_are_random_and_pass_their_check():
    codes = {receipts.new_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(receipts.normalize(code) == code and receipts.is_current(code) for code in codes)


async def test_a_report_without_categories_is_triaged_from_its_text(client, sessions):
    body = unique(description="我们村有个孩子初一就不上学了，跟着他叔去工地搬砖", categories=[])
    response = await client.post("/api/v1/reports", json=body)
    async with sessions() as session:
        case = await session.get(Case, response.json()["case_id"])
    assert "dropout" in case.categories


async def test_receipt_guessing_is_slowed_down_but_holders_are_not(app, client, monkeypatch):
    import httpx

    from channels import ratelimit

    code = (await client.post("/api/v1/reports", json=unique())).json()["receipt_code"]
    monkeypatch.setattr(ratelimit, "now", lambda: 1_800_000_000.0)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.30", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as guesser:
        for _ in range(30):  # a holder checking again and again is never limited
            assert (await guesser.get(f"/api/v1/receipts/{code}")).status_code == 200
        for _ in range(20):
            miss = await guesser.get(f"/api/v1/receipts/{receipts.new_code()}")
            assert miss.status_code == 404
        blocked = await guesser.get(f"/api/v1/receipts/{code}")
    assert blocked.status_code == 429
    assert (await client.get(f"/api/v1/receipts/{code}")).status_code == 200  # others aren't
