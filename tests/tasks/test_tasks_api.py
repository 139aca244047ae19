"""Tasks through the API: the center sets one, the department sees and completes it, others
do not see it, and the sweep escalates it like a referral (督办, 挂牌督办)."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from db.casework import Task
from db.models import CaseEvent, Notification
from dispatch.tasks.service import create_task, sweep_tasks
from tests.fixtures.reports import report


async def _case(client, pump) -> int:
    created = (await client.post("/api/v1/reports", json=report())).json()
    await pump()
    return created["case_id"]


async def _act(client, task: dict, action: str, headers, **body):
    """POST /api/v1/tasks/{id}/{action} (complete, cancel) with `body`."""
    return await client.post(f"/api/v1/tasks/{task['id']}/{action}", headers=headers, json=body)


async def test_a_task_reaches_its_department_and_is_completed_there(client, make_user, login,
                                                                    pump, sessions):
    caseworker = await login(await make_user("caseworker"))
    civil_user = await make_user("liaison", "civil_affairs", "990102")
    civil = await login(civil_user)
    education = await login(await make_user("liaison", "education", "990102"))
    case_id = await _case(client, pump)

    made = await client.post(f"/api/v1/cases/{case_id}/tasks", headers=caseworker,
                             json={"department": "civil_affairs", "title": "落实临时生活救助",
                                   "due": "3wd"})
    assert made.status_code == 201, made.text
    task = made.json()
    assert task["status"] == "open" and task["department"] == "civil_affairs"
    assert task["warn_at"] < task["due_at"] < task["flag_at"]

    seen = (await client.get("/api/v1/tasks?status=open", headers=civil)).json()["items"]
    assert task["id"] in [t["id"] for t in seen]
    others = (await client.get("/api/v1/tasks", headers=education)).json()["items"]
    assert task["id"] not in [t["id"] for t in others]
    refused = await _act(client, task, "complete", education, outcome="已办")
    assert refused.status_code == 404  # no hint that it exists

    empty = await _act(client, task, "complete", civil, outcome="  ")
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "outcome_required"
    done = await _act(client, task, "complete", civil, outcome="已发放临时救助金")
    assert done.status_code == 200 and done.json()["status"] == "done"
    again = await _act(client, task, "complete", civil, outcome="再次")
    assert again.status_code == 409 and "已完成" in again.json()["error"]["message"]

    async with sessions() as session:
        events = (await session.execute(select(CaseEvent.event).where(
            CaseEvent.case_id == case_id, CaseEvent.event.like("task_%")))).scalars().all()
        told = (await session.execute(select(Notification).where(
            Notification.user_id == civil_user.id, Notification.kind == "task_new",
            Notification.case_id == case_id))).scalars().all()
    assert events == ["task_created", "task_done"]
    assert len(told) == 1 and "新任务" in told[0].text


async def test_bad_task_input_is_refused_in_chinese(client, make_user, login, pump):
    caseworker = await login(await make_user("caseworker"))
    case_id = await _case(client, pump)
    for body, code in (
        ({"department": "nowhere", "title": "x", "due": "3wd"}, "unknown_department"),
        ({"department": "education", "title": "x", "due": "next week"}, "bad_due"),
        ({"department": "education", "title": " ", "due": "3wd"}, "title_required"),
    ):
        answer = await client.post(f"/api/v1/cases/{case_id}/tasks", headers=caseworker,
                                   json=body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["code"] == code
    liaison = await login(await make_user("liaison", "education", "990102"))
    forbidden = await client.post(f"/api/v1/cases/{case_id}/tasks", headers=liaison,
                                  json={"department": "education", "title": "x", "due": "3wd"})
    assert forbidden.status_code == 403


async def test_an_overdue_task_escalates_then_is_flagged_and_a_source_item_is_one_task(
    client, make_user, pump, sessions
):
    supervisor = await make_user("supervisor", jurisdiction="990100")
    liaison = await make_user("liaison", "education", "990102")
    case_id = await _case(client, pump)
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        task = await create_task(session=session, case_id=case_id, source="conference_decision",
                                 source_id="c1-d1", department_code="education",
                                 due=now + timedelta(hours=4), title="联系学校安排复学",
                                 actor="caseworker:x", now=now)
        twin = await create_task(session=session, case_id=case_id, source="conference_decision",
                                 source_id="c1-d1", department_code="education",
                                 due="3wd", title="联系学校安排复学", actor="caseworker:x", now=now)
    assert twin.id == task.id

    for at, stage in ((now + timedelta(hours=3, minutes=1), 1), (now + timedelta(hours=5), 2),
                      (now + timedelta(hours=9), 3)):
        async with sessions() as session, session.begin():
            await sweep_tasks(session, at)
        async with sessions() as session:
            row = await session.get(Task, task.id)
        assert row.escalation == stage
    async with sessions() as session:
        kinds = {(n.user_id, n.kind) for n in (await session.execute(select(Notification).where(
            Notification.case_id == case_id))).scalars()}
        events = (await session.execute(select(CaseEvent.event).where(
            CaseEvent.case_id == case_id, CaseEvent.event.like("task_%")).order_by(
            CaseEvent.id))).scalars().all()
    assert (liaison.id, "task_warning") in kinds
    assert (supervisor.id, "task_escalated") in kinds and (supervisor.id, "task_flagged") in kinds
    assert events == ["task_created", "task_warning", "task_escalated", "task_flagged"]
    assert row.next_check_at is None


async def test_the_center_withdraws_a_task_only_with_a_reason(client, make_user, login, pump):
    caseworker = await login(await make_user("caseworker"))
    case_id = await _case(client, pump)
    task = (await client.post(f"/api/v1/cases/{case_id}/tasks", headers=caseworker,
                              json={"department": "health", "title": "安排心理评估",
                                    "due": "24h"})).json()
    bare = await _act(client, task, "cancel", caseworker, reason="")
    assert bare.status_code == 422 and bare.json()["error"]["code"] == "reason_required"
    gone = await _act(client, task, "cancel", caseworker, reason="家长已自行就医")
    assert gone.status_code == 200 and gone.json()["status"] == "cancelled"
    listed = (await client.get(f"/api/v1/tasks?case_id={case_id}", headers=caseworker)).json()
    assert [(t["id"], t["cancel_reason"]) for t in listed["items"]] == [
        (task["id"], "家长已自行就医")
    ]
