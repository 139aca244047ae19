"""Periodic reports: a district writes, reviews (审核) and sends (报送) its report; the city
returns it with comments or acknowledges it, and sees which districts are missing by the
due date; a district sees only its own report."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from db.models import Case
from tests.fixtures.intake import recorded_case
from workflows.supervision import parse_period

PERIOD = "2024Q4"  # long past its due date (10 January 2025); no other test writes it


async def _case_in_period(sessions, pump, age: int, gender: str) -> int:
    case_id = await recorded_case(
        sessions, pump, channel="webform", description="孩子长期无人照料",
        categories=["guardianship_absent"], jurisdiction_code="990102001001",
        child={"name": "小明", "age": age, "gender": gender},
    )
    async with sessions() as session, session.begin():
        await session.execute(
            update(Case)
            .where(Case.id == case_id)
            .values(created_at=datetime(2024, 11, 10, 3, 0, tzinfo=UTC), risk_level="yellow")
        )
    return case_id


async def test_submission_return_and_acknowledgement(client, sessions, pump, make_user, login):
    await _case_in_period(sessions, pump, 9, "male")
    await _case_in_period(sessions, pump, 13, "female")
    writer = await login(await make_user("caseworker", jurisdiction="990102"))
    reviewer = await login(await make_user("supervisor", jurisdiction="990102"))
    city = await login(await make_user("supervisor", jurisdiction="990100"))
    west = await login(await make_user("supervisor", jurisdiction="990103"))
    base = f"/api/v1/supervision/reports/990102/{PERIOD}"

    draft = await client.put(
        base,
        headers=writer,
        json={
            "narrative": "本季度重点开展监护缺失儿童排查。",
            "typical_cases": [
                {"title": "某街道留守儿童临时监护", "text": "经入户评估后由民政临时监护。"}
            ],
        },
    )
    assert draft.status_code == 200, draft.text
    assert draft.json()["status"] == "draft"
    assert (await client.post(base + "/review", headers=writer, json={})).status_code == 403
    # Not reviewed yet: it cannot be sent.
    assert (await client.post(base + "/submit", headers=reviewer, json={})).status_code == 409

    reviewed = await client.post(base + "/review", headers=reviewer, json={})
    figures = reviewed.json()["figures"]
    assert figures["cases"] >= 2
    ages = next(b for b in figures["breakdowns"] if b["title"] == "年龄段")["rows"]
    assert {r["label"] for r in ages} >= {"6-11岁", "12-14岁"}
    sexes = {
        r["label"]: r["count"]
        for r in next(b for b in figures["breakdowns"] if b["title"] == "性别")["rows"]
    }
    assert sexes["男"] >= 1 and sexes["女"] >= 1
    rates = {r["label"]: r for r in figures["rates"]}
    assert set(rates) == {"排查分类率", "干预率", "救助率"}
    screening = rates["排查分类率"]
    assert screening["denominator"] >= 2 and screening["numerator"] >= 2
    # Each case received counts once by age band and once by sex.
    assert sum(r["count"] for r in ages) == sum(sexes.values()) == screening["denominator"]

    submitted = await client.post(base + "/submit", headers=reviewer, json={})
    assert submitted.json()["status"] == "submitted"
    assert (await client.put(base, headers=writer, json={"narrative": "改"})).status_code == 409

    lines = (await client.get(f"/api/v1/supervision/reports?period={PERIOD}", headers=city)).json()
    status = {i["district"]: (i["status"], i["missing"]) for i in lines["items"]}
    assert status["990102"] == ("submitted", False)
    assert status["990103"] == (None, True) and status["990104"] == (None, True)

    no_comment = await client.post(base + "/return", headers=city, json={})
    assert no_comment.status_code == 422 and "意见" in no_comment.json()["error"]["message"]
    returned = await client.post(
        base + "/return", headers=city, json={"comment": "典型案例需进一步提炼"}
    )
    assert returned.json()["status"] == "returned"
    assert returned.json()["comment"] == "典型案例需进一步提炼"

    await client.put(
        base, headers=writer, json={"narrative": "补充了典型情况。", "typical_cases": []}
    )
    await client.post(base + "/review", headers=reviewer, json={})
    await client.post(base + "/submit", headers=reviewer, json={})
    done = await client.post(base + "/acknowledge", headers=city, json={})
    assert done.json()["status"] == "acknowledged"
    steps = [h["what"] for h in done.json()["history"]]
    assert steps == [
        "edit",
        "review",
        "submit",
        "return",
        "edit",
        "review",
        "submit",
        "acknowledge",
    ]

    # 湖西区 sees neither 湖东区's report nor its line; nor may it acknowledge it.
    assert (await client.get(base, headers=west)).status_code == 404
    theirs = (await client.get(f"/api/v1/supervision/reports?period={PERIOD}", headers=west)).json()
    assert [i["district"] for i in theirs["items"]] == ["990103"]


@pytest.mark.parametrize(
    ("code", "first", "last", "due"),
    [
        ("2026-02", "2026-02-01", "2026-02-28", "2026-03-05"),
        ("2026Q4", "2026-10-01", "2026-12-31", "2027-01-10"),
        ("2026H1", "2026-01-01", "2026-06-30", "2026-07-15"),
        ("2026", "2026-01-01", "2026-12-31", "2027-01-20"),
    ],
)
def test_periods_and_their_due_dates(code, first, last, due):
    period = parse_period(code)
    assert (period.first.isoformat(), period.last.isoformat(), period.due.isoformat()) == (
        first,
        last,
        due,
    )


async def test_a_bad_period_is_refused_with_the_formats_allowed(client, make_user, login):
    city = await login(await make_user("supervisor", jurisdiction="990100"))
    bad = await client.get("/api/v1/supervision/reports?period=2026Q5", headers=city)
    assert bad.status_code == 422
    assert "2026Q3" in bad.json()["error"]["message"]
