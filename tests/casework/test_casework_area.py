"""The area staff's own work: visits on the cases paired with them (no risk level of their
own making) and concerns that open a report for a child of their area."""

from sqlalchemy import select

from db.models import Report
from tests.fixtures.reports import report

COMMUNITY = "990102001001"


async def _followed_case(client, pump, caseworker) -> int:
    case_id = (await client.post("/api/v1/reports", json=report())).json()["case_id"]
    await pump()
    await client.post(f"/api/v1/cases/{case_id}/events", headers=caseworker,
                      json={"event": "assess"})
    await client.post(f"/api/v1/cases/{case_id}/assessment", headers=caseworker,
                      json={"risk_level": "yellow"})
    for step in ("handle", "follow_up"):
        moved = await client.post(f"/api/v1/cases/{case_id}/events", headers=caseworker,
                                  json={"event": step})
        assert moved.status_code == 200, moved.text
    return case_id


async def test_a_child_director_records_visits_on_paired_cases_only(client, make_user, login,
                                                                    pump):
    caseworker = await login(await make_user("caseworker"))
    director = await make_user("child_director", jurisdiction=COMMUNITY)
    director_h = await login(director)
    paired = await _followed_case(client, pump, caseworker)
    unpaired = await _followed_case(client, pump, caseworker)
    await client.put(f"/api/v1/cases/{paired}/pairing", headers=caseworker,
                     json={"username": director.username})

    visit = await client.post(f"/api/v1/cases/{paired}/visits", headers=director_h,
                              json={"findings": "入户看望，孩子在家由奶奶照顾"})
    assert visit.status_code == 201, visit.text
    assert visit.json()["next_due_at"] is not None
    risky = await client.post(f"/api/v1/cases/{paired}/visits", headers=director_h,
                              json={"findings": "情况变差", "risk_after": "red"})
    assert risky.status_code == 403 and risky.json()["error"]["code"] == "risk_by_center"
    other = await client.post(f"/api/v1/cases/{unpaired}/visits", headers=director_h,
                              json={"findings": "x"})
    assert other.status_code == 404
    case = (await client.get(f"/api/v1/cases/{paired}", headers=director_h)).json()
    assert case["risk_level"] == "yellow"
    assert [v["findings"] for v in case["visits"] if v["visited_at"]] == [
        "入户看望，孩子在家由奶奶照顾"]


async def test_a_concern_from_the_area_opens_a_report_inside_it(client, make_user, login, pump,
                                                                sessions):
    station = await make_user("station_worker", jurisdiction="990102001")
    station_h = await login(station)
    raised = await client.post("/api/v1/casework/concerns", headers=station_h, json={
        "description": "村里一名孩子近一个月没有上学，家中只有年迈的外婆。",
        "jurisdiction": COMMUNITY, "child": {"name": "张小花", "age": 10},
        "categories": ["dropout"]})
    assert raised.status_code == 201, raised.text
    case_id = raised.json()["case_id"]
    async with sessions() as session:
        row = await session.scalar(select(Report).where(Report.case_id == case_id))
    assert row.jurisdiction_code == COMMUNITY and row.reporter["unit"] == "未保站"
    await pump()
    caseworker = await login(await make_user("caseworker"))
    case = (await client.get(f"/api/v1/cases/{case_id}", headers=caseworker)).json()
    assert "dropout" in case["categories"]

    away = await client.post("/api/v1/casework/concerns", headers=station_h, json={
        "description": "别的街道的孩子", "jurisdiction": "990103001001"})
    assert away.status_code == 422 and away.json()["error"]["code"] == "out_of_area"
    odd = await client.post("/api/v1/casework/concerns", headers=station_h, json={
        "description": "x", "categories": ["aliens"]})
    assert odd.status_code == 422 and "困境类型应为" in odd.json()["error"]["message"]
    assert (await client.post("/api/v1/casework/concerns", headers=caseworker, json={
        "description": "x"})).status_code == 403
