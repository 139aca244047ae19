"""Case conferences that decide, through the API: triggers propose one, the caseworker calls
it and the invited liaisons are told, attendance and notes are recorded, and each decision
becomes a task that escalates like a referral when it is not done in time."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from db.casework import Task
from db.models import Notification
from dispatch.tasks.service import sweep_tasks
from tests.fixtures.lookups import notified
from tests.fixtures.reports import report


async def test_a_conference_is_proposed_called_held_and_its_decisions_escalate(
    client, make_user, login, pump, sessions
):
    caseworker = await login(await make_user("caseworker"))
    supervisor = await make_user("supervisor", jurisdiction="990100")
    police = await make_user("liaison", "police", "990102001", phone="+8613900000011")
    education = await make_user("liaison", "education", "990102")
    health = await make_user("liaison", "health", "990102")
    case_id = (await client.post("/api/v1/reports", json=report())).json()["case_id"]
    await pump()
    base = f"/api/v1/cases/{case_id}"
    await client.post(f"{base}/events", headers=caseworker, json={"event": "assess"})
    await client.post(f"{base}/assessment", headers=caseworker, json={"risk_level": "red"})

    listed = (await client.get(f"{base}/meetings", headers=caseworker)).json()
    assert "风险等级为红色" in listed["proposed"]
    assert any("个部门同时承办" in r for r in listed["proposed"])  # routing sent it to 5

    when = datetime.now(UTC) + timedelta(days=1)
    called = await client.post(f"{base}/meetings", headers=caseworker, json={
        "scheduled_at": when.isoformat(), "departments": ["police", "education"],
        "agenda": "研究孩子的临时安置与复学", "place": "区未保中心会议室"})
    assert called.status_code == 201, called.text
    meeting = called.json()
    invited = set(await notified(sessions, case_id, "conference_invite"))
    assert {police.id, education.id} <= invited and health.id not in invited
    # The invited liaison sees it in their console's list; one not invited does not.
    seen = (await client.get("/api/v1/meetings", headers=await login(education))).json()
    assert meeting["id"] in [m["id"] for m in seen["items"]]
    unseen = (await client.get("/api/v1/meetings", headers=await login(health))).json()
    assert meeting["id"] not in [m["id"] for m in unseen["items"]]

    past = await client.post(f"{base}/meetings", headers=caseworker, json={
        "scheduled_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "departments": ["police", "education"], "agenda": "x"})
    assert past.status_code == 422 and past.json()["error"]["code"] == "in_the_past"

    held = await client.post(f"/api/v1/meetings/{meeting['id']}/record", headers=caseworker,
                             json={"attended": ["police", "education"],
                                   "participants": "派出所张警官、学校李老师",
                                   "notes": "会商认为孩子需先由祖母照料并尽快复学",
                                   "decisions": [
                                       {"title": "对父亲进行训诫", "department": "police",
                                        "due": "2wd"},
                                       {"title": "安排孩子下周复学", "department": "education",
                                        "due": "5wd"}]})
    assert held.status_code == 200, held.text
    tasks = held.json()["tasks"]
    assert [(t["department"], t["source"]) for t in tasks] == [
        ("police", "conference_decision"), ("education", "conference_decision")]
    again = await client.post(f"/api/v1/meetings/{meeting['id']}/record", headers=caseworker,
                              json={"attended": [], "notes": "x"})
    assert again.status_code == 409

    # Not done by its due date: the decision is escalated to the supervisors (督办).
    police_task = tasks[0]
    late = datetime.fromisoformat(police_task["due_at"]) + timedelta(minutes=1)
    async with sessions() as session, session.begin():
        await sweep_tasks(session, late)
    async with sessions() as session:
        row = await session.get(Task, police_task["id"])
        told = await session.scalar(select(Notification.id).where(
            Notification.user_id == supervisor.id, Notification.kind == "task_escalated",
            Notification.case_id == case_id))
    assert row.escalation >= 2 and told is not None
