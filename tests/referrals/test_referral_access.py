"""Claim races, liaison scope, return and re-routing, and routing by jurisdiction."""

import asyncio
import secrets

import pytest
from sqlalchemy import select

from db.models import Referral
from dispatch.referrals.routing import COOPERATING, LEAD, POLICE_COPY, departments_for
from tests.fixtures.reports import report
from workflows.reference import reference

pytest_plugins = ("tests.fixtures.console",)


async def _routed_case(client, pump, **changes) -> int:
    created = (await client.post("/api/v1/reports", json=report(**changes))).json()
    await pump()
    return created["case_id"]


async def _referral(sessions, case_id: int, department: str) -> Referral:
    async with sessions() as session:
        return (await session.execute(select(Referral).where(
            Referral.case_id == case_id, Referral.department_code == department,
            Referral.status.not_in(("returned", "cancelled"))))).scalar_one()


async def test_many_concurrent_claims_have_exactly_one_winner(client, make_user, login, pump,
                                                              sessions):
    case_id = await _routed_case(client, pump)
    referral = await _referral(sessions, case_id, "police")
    liaisons = [await make_user("liaison", "police", "990102001") for _ in range(16)]
    headers = [await login(u) for u in liaisons]
    responses = await asyncio.gather(*(
        client.post(f"/api/v1/referrals/{referral.id}/claim", headers=h) for h in headers))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * 15
    loser = next(r for r in responses if r.status_code == 409)
    assert loser.json()["error"]["code"] == "already_claimed"
    winner = liaisons[[r.status_code for r in responses].index(200)]
    assert (await _referral(sessions, case_id, "police")).claimed_by == winner.id


async def test_liaisons_see_only_their_department_and_subtree(client, make_user, login, pump,
                                                             sessions):
    case_id = await _routed_case(client, pump)  # 湖东区幸福街道幸福里社区
    police_ref = await _referral(sessions, case_id, "police")
    other_district = await login(await make_user("liaison", "police", "990103"))
    other_department = await login(await make_user("liaison", "education", "990102"))
    city_police = await login(await make_user("liaison", "police", "990100"))

    for headers in (other_district, other_department):
        listed = await client.get(f"/api/v1/referrals?case_id={case_id}", headers=headers)
        assert listed.status_code == 200 and listed.json()["items"] == []
        assert (await client.get(f"/api/v1/cases/{case_id}", headers=headers)).status_code == 404
        claim = await client.post(f"/api/v1/referrals/{police_ref.id}/claim", headers=headers)
        assert claim.status_code == 404  # a foreign id looks like no id at all
    # Narrowed to the case: the whole city's list holds other tests' referrals too.
    listed = (
        await client.get(f"/api/v1/referrals?case_id={case_id}", headers=city_police)
    ).json()["items"]
    assert {r["department"] for r in listed} == {"police"}

    # Reporter identity: police sees it, other departments do not.
    street_police = await login(await make_user("liaison", "police", "990102001"))
    seen = (await client.get(f"/api/v1/cases/{case_id}", headers=street_police)).json()
    assert seen["reports"][0]["reporter"]["name"] == "李老师"
    civil = await login(await make_user("liaison", "civil_affairs", "990102"))
    hidden = (await client.get(f"/api/v1/cases/{case_id}", headers=civil)).json()
    assert hidden["reports"][0]["reporter"] is None
    assert "13800138000" not in str(hidden)


async def test_only_the_claimant_works_a_referral_and_a_return_goes_back_to_the_center(
    client, make_user, login, pump, sessions
):
    case_id = await _routed_case(client, pump, categories=["dropout"], situations=[])
    referral = await _referral(sessions, case_id, "education")
    first = await login(await make_user("liaison", "education", "990102"))
    second = await login(await make_user("liaison", "education", "990102"))
    assert (await client.post(f"/api/v1/referrals/{referral.id}/claim",
                              headers=first)).status_code == 200
    stolen = await client.post(f"/api/v1/referrals/{referral.id}/complete",
                               json={"outcome": "x"}, headers=second)
    assert stolen.status_code == 403
    empty = await client.post(f"/api/v1/referrals/{referral.id}/return",
                              json={"reason": ""}, headers=first)
    assert empty.status_code == 422
    returned = await client.post(f"/api/v1/referrals/{referral.id}/return",
                                 json={"reason": "学生户籍不在本区，应由湖西区教育局办理"},
                                 headers=first)
    assert returned.status_code == 200 and returned.json()["status"] == "returned"
    again = await client.post(f"/api/v1/referrals/{referral.id}/progress",
                              json={"note": "x"}, headers=first)
    assert again.status_code == 409

    # Returned: the department keeps its row, not the case behind it.
    assert (await client.get(f"/api/v1/cases/{case_id}", headers=first)).status_code == 404
    mine = await client.get(f"/api/v1/referrals?case_id={case_id}", headers=first)
    assert [r["status"] for r in mine.json()["items"]] == ["returned"]

    caseworker = await login(await make_user("caseworker"))
    offices = await _office(sessions, "education", "990103")
    routed = await client.post(f"/api/v1/referrals/route/{case_id}",
                               json={"department": "education", "office_id": offices},
                               headers=caseworker)
    assert routed.status_code == 201
    assert routed.json()["jurisdiction"] == "990103" and routed.json()["status"] == "queued"
    dup = await client.post(f"/api/v1/referrals/route/{case_id}",
                            json={"department": "education"}, headers=caseworker)
    assert dup.status_code == 409


async def _office(sessions, department: str, jurisdiction: str) -> int:
    from db.models import Office

    async with sessions() as session:
        return (await session.execute(select(Office.id).where(
            Office.department_code == department,
            Office.jurisdiction_code == jurisdiction))).scalar_one()


async def test_routing_falls_back_up_the_tree(client, pump, sessions):
    # 青石镇石门村: no street-level offices; the county has education, the city has justice.
    case_id = await _routed_case(client, pump, categories=["juvenile_offending"],
                                 jurisdiction="990104001001", situations=[])
    async with sessions() as session:
        refs = (await session.execute(select(Referral).where(
            Referral.case_id == case_id))).scalars().all()
    where = {r.department_code: r.jurisdiction_code for r in refs}
    assert where["police"] == "990104"
    assert where["education"] == "990104"
    assert where["justice"] == "990100"
    assert where["youth_league"] == "990100"


async def test_a_department_without_any_office_is_unrouted_not_dropped(
    client, make_user, login, pump, sessions
):
    from db.models import Category, Office

    async with sessions() as session, session.begin():
        session.add(Category(code="housing_test", name="住房安全", lead_department="housing",
                             cooperating=[]))
        office = (await session.execute(select(Office).where(
            Office.department_code == "housing"))).scalar_one()
        housing_office = office.id
        await session.delete(office)
    try:
        from workflows.cases.intake import NewReport, record_report

        async with sessions() as session, session.begin():
            result = await record_report(session, NewReport(
                channel="webform", description=f"危房 {secrets.token_hex(4)}",
                categories=["housing_test"], jurisdiction_code="990102"))
        await pump()
        referral = await _referral(sessions, result.case_id, "housing")
        assert referral.status == "unrouted" and referral.office_id is None
        caseworker = await login(await make_user("caseworker"))
        case = (await client.get(f"/api/v1/cases/{result.case_id}", headers=caseworker)).json()
        assert "referral_unrouted" in [e["event"] for e in case["timeline"]]
    finally:
        async with sessions() as session, session.begin():
            session.add(Office(id=housing_office, department_code="housing",
                               jurisdiction_code="990100", name="东湖市住建"))


@pytest.mark.parametrize("category", sorted(reference()["categories"]))
def test_routing_table_for_every_category(category):
    rules = {c: (lead, coop) for c, (_, lead, coop) in reference()["categories"].items()}
    roles = departments_for([category], rules, police_now=False)
    lead, cooperating = rules[category]
    assert next(iter(roles)) == lead and roles[lead] == LEAD
    for dept in cooperating:
        assert roles[dept] == COOPERATING
    with_police = departments_for([category], rules, police_now=True)
    assert with_police["police"] == (LEAD if lead == "police" else
                                     COOPERATING if "police" in cooperating else POLICE_COPY)


async def test_a_department_supervisor_sees_only_that_department(client, make_user, login, pump,
                                                                sessions):
    case_id = await _routed_case(client, pump, categories=["dropout"], situations=[])
    education_boss = await login(await make_user("supervisor", "education", "990100"))
    health_boss = await login(await make_user("supervisor", "health", "990100"))
    seen = (await client.get(f"/api/v1/cases/{case_id}", headers=education_boss)).json()
    assert seen["reports"][0]["reporter"] is None  # not police: reporter stays hidden
    assert (await client.get(f"/api/v1/cases/{case_id}", headers=health_boss)).status_code == 404
    listed = (await client.get("/api/v1/cases", headers=health_boss)).json()["items"]
    assert all(c["id"] != case_id for c in listed)


async def test_a_department_supervisor_cannot_drive_the_center_s_workflow(
    client, make_user, login, pump
):
    case_id = await _routed_case(client, pump, categories=["dropout"], situations=[])
    education_boss = await login(await make_user("supervisor", "education", "990100"))
    moved = await client.post(f"/api/v1/cases/{case_id}/events", json={"event": "assess"},
                              headers=education_boss)
    assert moved.status_code == 403


async def test_a_claim_writes_its_timeline_event_audit_row_and_claimed_phase_deadlines(
    client, make_user, login, pump, sessions
):
    from db.models import AuditLog, Case, CaseEvent
    from dispatch.referrals.deadlines import effective_risk, enter_phase

    case_id = await _routed_case(client, pump)
    queued = await _referral(sessions, case_id, "police")
    liaison = await make_user("liaison", "police", "990102001")
    answer = await client.post(f"/api/v1/referrals/{queued.id}/claim",
                               headers=await login(liaison))
    assert answer.status_code == 200 and answer.json()["status"] == "claimed"
    claimed = await _referral(sessions, case_id, "police")
    async with sessions() as session:
        case = await session.get(Case, case_id)
        events = (await session.execute(select(CaseEvent).where(
            CaseEvent.case_id == case_id, CaseEvent.event == "referral_claimed"))).scalars().all()
        audits = (await session.execute(select(AuditLog).where(
            AuditLog.action == "referral.claim",
            AuditLog.object_id == str(queued.id)))).scalars().all()
    assert claimed.claimed_by == liaison.id and claimed.claimed_at is not None
    assert [(e.actor_id, e.data) for e in events] == [
        (liaison.id, {"referral_id": queued.id, "department": "police"})]
    assert [(a.actor_id, a.object_type) for a in audits] == [(liaison.id, "referral")]
    # The deadlines are the ones the workflow's own rules give a referral claimed then.
    expected = Referral(**{**claimed.model_dump(), "escalation": 3})
    enter_phase(expected, effective_risk(case))
    assert (claimed.escalation, claimed.claim_due_at, claimed.action_due_at,
            claimed.next_check_at) == (expected.escalation, expected.claim_due_at,
                                       expected.action_due_at, expected.next_check_at)
    assert claimed.next_check_at is not None
    again = await client.post(f"/api/v1/referrals/{queued.id}/claim",
                              headers=await login(await make_user("liaison", "police", "990102")))
    assert again.status_code == 409


async def test_a_department_reads_the_case_while_its_referral_is_live_or_done(
    client, make_user, login, pump, sessions, console_client
):
    """Claimed and completed referrals open the case to their department; a returned one
    no more, and the liaison's referral page then shows the referral without the case."""
    done_case = await _routed_case(client, pump, categories=["dropout"], situations=[])
    returned_case = await _routed_case(client, pump, categories=["dropout"], situations=[])
    user = await make_user("liaison", "education", "990102")
    liaison = await login(user)
    done = await _referral(sessions, done_case, "education")
    gone = await _referral(sessions, returned_case, "education")
    for referral in (done, gone):
        claimed = await client.post(f"/api/v1/referrals/{referral.id}/claim", headers=liaison)
        assert claimed.status_code == 200, claimed.text
    for case_id in (done_case, returned_case):
        assert (await client.get(f"/api/v1/cases/{case_id}", headers=liaison)).status_code == 200
    await client.post(f"/api/v1/referrals/{done.id}/complete",
                      json={"outcome": "已安排复学，班主任每周家访"}, headers=liaison)
    await client.post(f"/api/v1/referrals/{gone.id}/return",
                      json={"reason": "学生户籍不在本区"}, headers=liaison)

    kept = await client.get(f"/api/v1/cases/{done_case}", headers=liaison)
    assert kept.status_code == 200
    story = kept.json()["reports"][0]["description"]
    assert (await client.get(f"/api/v1/cases/{returned_case}", headers=liaison)).status_code == 404

    console = await console_client(user)
    page = await console.get(f"/console/referrals/{gone.id}")
    assert page.status_code == 200 and "本部门不再查看案件内容" in page.text
    returned_story = (await client.get(
        f"/api/v1/cases/{returned_case}", headers=await login(await make_user("caseworker"))
    )).json()["reports"][0]["description"]
    assert returned_story not in page.text
    assert story in (await console.get(f"/console/referrals/{done.id}")).text
