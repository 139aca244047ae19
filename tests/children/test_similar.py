"""`GET /api/v1/cases/{id}/similar`: the same child through the web form, 12345 and SMS is
suggested with the right reasons; a namesake in another district is not; a report 400 days
later about a closed case is found; only the center, in its scope, sees matches."""

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from db.models import Case, Report
from dispatch.children.matching_service import refresh_keys
from tests.fixtures.children import a_name, a_place
from tests.fixtures.partners import order
from tests.fixtures.reports import report
from tests.fixtures.twilio_fake import mobile, signed, sms

pytest_plugins = ("tests.fixtures.partners", "tests.fixtures.twilio")


async def _filed(client, child: dict, reporter: str, role: str = "teacher", **changes) -> int:
    """A web-form report about `child` by a reporter with a number of their own: its case."""
    answer = await client.post("/api/v1/reports", json=report(
        child=child, reporter={"name": reporter, "role": role, "phone": mobile()}, **changes))
    assert answer.status_code == 201, answer.text
    return answer.json()["case_id"]


async def _similar(client, case_id: int, headers) -> list[dict]:
    response = await client.get(f"/api/v1/cases/{case_id}/similar", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_the_same_child_through_web_form_12345_and_sms_is_suggested_with_reasons(
    client, make_user, login, post_forward, twilio, run_jobs
):
    operator = await login(await make_user("operator"))
    name, sound_alike = a_name()
    place = a_place()
    web_case = await _filed(
        client, {"name": name, "age": 11, "gender": "male", "address": f"湖东区{place}小区3栋"},
        "李老师")
    forward = await post_forward("12345", order(
        address=f"东湖市湖东区幸福街道{place}三号楼附近",
        child={"name": sound_alike, "age": 12, "gender": "male"},
        caller_phone=mobile(),
    ))
    assert forward.status_code == 202, forward.text
    forward_case = forward.json()["case_id"]
    await signed(client, "/channels/twilio/sms", sms(
        mobile(), f"{place}小区3栋有个十来岁的男孩经常被他爸打，身上青一块紫一块"))
    await run_jobs()  # the matching job stores each report's keys

    items = await _similar(client, web_case, operator)
    by_case = {i["case_id"]: i for i in items}
    assert forward_case in by_case
    hit = by_case[forward_case]
    assert 0 <= hit["score"] <= 1 and "姓名同音" in hit["reasons"]
    assert "地址相同" in hit["reasons"] and "年龄相符" in hit["reasons"]
    sms_hits = [i for i in items if i["case_id"] not in (forward_case, web_case)]
    assert sms_hits and "地址相同" in sms_hits[0]["reasons"]
    assert [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)
    # And the other way round: from the forward's case the web form's is found.
    assert web_case in {i["case_id"] for i in await _similar(client, forward_case, operator)}


async def test_a_namesake_in_another_district_is_not_suggested(client, make_user, login, pump):
    operator = await login(await make_user("operator"))
    name, _ = a_name()
    here = await client.post("/api/v1/reports", json=report(
        child={"name": name, "age": 8, "gender": "female", "address": "幸福里小区5栋"},
        jurisdiction="990102001001", categories=["domestic_violence"],
    ))
    there = await _filed(
        client, {"name": name, "age": 14, "gender": "female", "address": "石门村二组"}, "王老师",
        jurisdiction="990104001001", categories=["dropout"],
        description="学生已经一个月没来上学，家里说去外地打工了",
    )
    await pump()
    items = await _similar(client, here.json()["case_id"], operator)
    assert there not in {i["case_id"] for i in items}


async def test_a_report_400_days_later_about_a_closed_case_is_found(
    client, make_user, login, sessions, pump
):
    operator = await login(await make_user("operator"))
    name, _ = a_name()
    place = a_place()
    old_case = await _filed(
        client, {"name": name, "age": 7, "gender": "male", "address": f"{place}小区2栋"}, "赵医生",
        "doctor")
    await pump()
    async with sessions() as session, session.begin():
        await session.execute(update(Report).where(Report.case_id == old_case).values(
            created_at=Report.created_at - timedelta(days=400)))
        await session.execute(update(Case).where(Case.id == old_case).values(
            state="closed", created_at=Case.created_at - timedelta(days=400)))
    new = await _filed(
        client, {"name": name, "age": 8, "gender": "male", "address": f"{place}2号楼"}, "钱老师")
    await pump()
    items = await _similar(client, new, operator)
    found = {i["case_id"]: i for i in items}
    assert old_case in found and found[old_case]["state"] == "closed"
    assert "姓名相同" in found[old_case]["reasons"]


async def test_only_the_center_in_its_scope_sees_matches(client, make_user, login, pump):
    name, _ = a_name()
    place = a_place()
    ids = []
    for jurisdiction in ("990102001001", "990102001001"):
        ids.append(await _filed(client, {"name": name, "age": 9, "address": f"{place}小区"},
                                "孙老师", jurisdiction=jurisdiction))
    await pump()
    liaison = await login(await make_user("liaison", "police", "990102001"))
    denied = await client.get(f"/api/v1/cases/{ids[0]}/similar", headers=liaison)
    assert denied.status_code == 403 and denied.json()["error"]["message"]
    elsewhere = await login(await make_user("operator", jurisdiction="990104"))
    hidden = await client.get(f"/api/v1/cases/{ids[0]}/similar", headers=elsewhere)
    assert hidden.status_code == 404
    # A case of their own district is matched only against cases they may see.
    own = await _filed(client, {"name": name, "age": 9, "address": f"{place}小区"}, "周老师",
                       jurisdiction="990104001001")
    await pump()
    seen = await _similar(client, own, elsewhere)
    assert not {i["case_id"] for i in seen} & set(ids)
    center = await login(await make_user("caseworker"))
    assert ids[1] in {i["case_id"] for i in await _similar(client, ids[0], center)}
    assert (await client.get(f"/api/v1/cases/{ids[0]}/similar?limit=500",
                             headers=center)).status_code == 422


async def test_a_later_report_joining_a_case_is_matched_on_what_it_says(
    client, make_user, login, post_forward, run_jobs
):
    """A 12345 order's update names the child the first order did not: other cases about
    that child find the joined case through it."""
    operator = await login(await make_user("operator"))
    name, sound_alike = a_name()
    place = a_place()
    opening = order(content="市民反映邻居家经常传出孩子哭喊声", child=None, address=None,
                    caller_phone=mobile())
    first = await post_forward("12345", opening)
    assert first.status_code == 202, first.text
    joined_case = first.json()["case_id"]
    await run_jobs()  # the first order's case is registered and matched before the update
    update = await post_forward("12345", order(
        original_external_id=opening["external_id"], caller_phone=mobile(),
        content="补充：孩子是九岁女孩，住三号楼",
        address=f"东湖市湖东区幸福街道{place}三号楼",
        child={"name": name, "age": 9, "gender": "female"},
    ))
    assert update.json()["case_id"] == joined_case
    web = await _filed(
        client, {"name": sound_alike, "age": 9, "gender": "female", "address": f"湖东区{place}3栋"},
        "李老师")
    await run_jobs()
    found = {i["case_id"] for i in await _similar(client, web, operator)}
    assert joined_case in found


async def _stored(session, at, *, category: str, text: str, place: str) -> int:
    """A case and its report about an unnamed child, as intake and its matching job leave
    them (keys included), taken at `at`."""
    case = Case(state="reported", categories=[category], jurisdiction_code=place,
                created_at=at, updated_at=at)
    session.add(case)
    await session.flush()
    stored = Report(channel="sms", external_id=f"crowd-{secrets.token_hex(6)}",
                    receipt_code=secrets.token_hex(6).upper(), case_id=case.id,
                    reporter_phone=mobile(), categories=[category], child={},
                    jurisdiction_code=place, description=text, created_at=at,
                    in_danger_now=False)
    refresh_keys(stored)
    session.add(stored)
    await session.flush()
    return case.id


async def test_an_unnamed_child_two_days_earlier_at_the_place_is_found_among_many_reports(
    client, make_user, login, sessions
):
    """Two anonymous texts about an unnamed child at one place two days apart (place, time,
    story) are suggested although the place's following days hold a hundred other reports:
    the nearest in time are the candidates, not the newest."""
    operator = await login(await make_user("operator"))
    place, story = "990103001001", "邻居家小孩天天晚上在楼道里哭，大人不在家，没人管饭"
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(days=200)
    async with sessions() as session, session.begin():
        earlier = await _stored(session, moment - timedelta(days=2), category="left_behind",
                                text=story, place=place)
        later = await _stored(session, moment, category="left_behind", text=story + "。",
                              place=place)
        for n in range(100):
            await _stored(session, moment + timedelta(days=1, minutes=40 * n),
                          category="dropout", text=f"学生{n}号辍学在家务农", place=place)
    found = {i["case_id"]: i for i in await _similar(client, later, operator)}
    assert earlier in found
    assert {"情节相似", "时间相近"} <= set(found[earlier]["reasons"])
