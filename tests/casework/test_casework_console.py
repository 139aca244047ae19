"""Casework in the console: the case page's panel (owner, pairing, plan, tasks), the plan's
approval, "my cases" for caseworkers and area staff, the task page, call wrap-up."""

import secrets
from datetime import UTC, datetime

from db.telephony import VoiceCall
from tests.fixtures.console import form_token

pytest_plugins = ("tests.fixtures.console",)


async def _post(console, url: str, page_url: str, **form):
    page = await console.get(page_url)
    assert page.status_code == 200, page.text
    answer = await console.post(url, data={"csrf_token": form_token(page.text), **form})
    assert answer.status_code == 303, answer.text
    return await console.get(answer.headers["location"])


async def test_the_case_page_assigns_plans_and_sets_tasks(new_case, make_user, console_client,
                                                          client, login):
    supervisor = await make_user("supervisor")
    caseworker = await make_user("caseworker")
    console = await console_client(supervisor)
    case_id = await new_case()
    api = await login(supervisor)
    await client.post(f"/api/v1/cases/{case_id}/events", headers=api, json={"event": "assess"})
    await client.post(f"/api/v1/cases/{case_id}/assessment", headers=api,
                      json={"risk_level": "orange"})
    page_url = f"/console/cases/{case_id}"

    page = await _post(console, f"{page_url}/owner", page_url, username=caseworker.username)
    assert "已指派责任社工" in page.text and caseworker.username in page.text
    page = await _post(console, f"{page_url}/owner", page_url, username=supervisor.username)
    assert "更换责任社工需要填写原因" in page.text  # refused in Chinese, not a stack trace

    page = await _post(console, f"{page_url}/plan", page_url, needs=["医疗救治", "法律援助"])
    assert "待督导审批" in page.text and "审批通过，发出转介" in page.text
    page = await _post(console, f"{page_url}/plan/approve", page_url)
    assert "帮扶计划已审批" in page.text and "已实施" in page.text

    page = await _post(console, f"{page_url}/tasks", page_url, title="安排心理评估",
                       department="health", due="3wd")
    assert "任务已添加" in page.text and "安排心理评估" in page.text
    bad = await _post(console, f"{page_url}/tasks", page_url, title="x", department="health",
                      due="soon")
    assert "期限格式不正确" in bad.text

    mine = await (await console_client(caseworker)).get("/console/casework/mine")
    assert mine.status_code == 200 and f"#{case_id}" in mine.text


async def test_a_liaison_completes_a_task_on_the_task_page(new_case, make_user, console_client,
                                                           client, login):
    caseworker = await login(await make_user("caseworker"))
    liaison = await make_user("liaison", "education", "990102")
    case_id = await new_case()
    made = await client.post(f"/api/v1/cases/{case_id}/tasks", headers=caseworker,
                             json={"department": "education", "title": "联系学校复学",
                                   "due": "5wd"})
    task_id = made.json()["id"]
    console = await console_client(liaison)
    page = await console.get("/console/tasks")
    assert page.status_code == 200 and "联系学校复学" in page.text
    done = await _post(console, f"/console/tasks/{task_id}/complete", "/console/tasks",
                       outcome="已与学校约定下周一返校")
    assert "任务已完成" in done.text and "已与学校约定下周一返校" in done.text


async def test_area_staff_have_their_cases_and_raise_concerns_in_the_console(
    new_case, make_user, console_client, client, login
):
    caseworker = await login(await make_user("caseworker"))
    director = await make_user("child_director", jurisdiction="990102001001")
    case_id = await new_case()
    await client.put(f"/api/v1/cases/{case_id}/pairing", headers=caseworker,
                     json={"username": director.username})
    console = await console_client(director)
    home = await console.get("/console", follow_redirects=True)
    assert "我的案件" in home.text and f"#{case_id}" in home.text
    assert (await console.get(f"/console/cases/{case_id}")).status_code == 200
    assert (await console.get("/console/board")).status_code == 403
    raised = await _post(console, "/console/casework/concerns", "/console/casework/mine",
                         child_name="李小明", child_age="9",
                         description="孩子近一周独自在家，父母外出务工未归。")
    assert "已报告" in raised.text


async def test_operators_wrap_up_calls_and_see_them_counted(make_user, console_client,
                                                            sessions):
    operator = await make_user("operator")
    sid = "CA" + secrets.token_hex(16)
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        session.add(VoiceCall(call_sid=sid, phone="+8613912345678", status="completed",
                              route="open", answered_at=now, created_at=now, updated_at=now))
    console = await console_client(operator)
    page = await console.get("/console/casework/calls")
    assert page.status_code == 200 and sid in page.text and "13912345678" not in page.text
    done = await _post(console, f"/console/operator/calls/{sid}/wrapup",
                       "/console/casework/calls", type="consultation", note="咨询监护权问题")
    assert "来电已小结" in done.text and sid not in done.text
    assert "咨询" in done.text


async def test_the_written_assessment_from_the_case_page(new_case, make_user, console_client,
                                                         client, login):
    caseworker = await make_user("caseworker")
    case_id = await new_case()
    await client.post(f"/api/v1/cases/{case_id}/events", headers=await login(caseworker),
                      json={"event": "assess"})
    console = await console_client(caseworker)
    page_url = f"/console/cases/{case_id}"
    answers = {"q_guardian_duty": "absent", "q_other_carer": "no", "q_current_harm": "safe",
               "q_health": "good", "q_schooling": "dropped", "q_living": "hard"}
    page = await _post(console, f"{page_url}/assessments", page_url, **answers,
                       summary="父母均在外务工，孩子辍学在家", needs=["教育救助"])
    assert "评估已保存" in page.text and "第1版" in page.text
    case = (await client.get(f"/api/v1/cases/{case_id}", headers=await login(caseworker))).json()
    assert case["risk_level"] == "orange"  # 监护缺失 calls for orange at least
    page = await _post(console, f"{page_url}/assessments", page_url, **answers,
                       summary="复评", risk_level="blue")
    assert "需要填写理由" in page.text


async def test_guardianship_from_the_case_page(new_case, make_user, console_client):
    console = await console_client(await make_user("caseworker"))
    case_id = await new_case()
    page_url = f"/console/cases/{case_id}"
    page = await _post(console, f"{page_url}/placements", page_url,
                       kind="family_foster", body="王家寄养家庭", start_on="2026-11-02")
    assert "安置已登记" in page.text and "王家寄养家庭" in page.text
    page = await _post(console, f"{page_url}/interventions", page_url, step="reprimand",
                       department="police", acted_on="2026-11-03")
    assert "跨越前序措施需要说明理由" in page.text
    page = await _post(console, f"{page_url}/interventions", page_url, step="admonish",
                       department="women_federation", acted_on="2026-11-03")
    assert "监护干预已登记" in page.text


async def test_a_conference_is_called_and_held_from_the_case_page(
    new_case, make_user, console_client
):
    caseworker = await make_user("caseworker")
    liaison = await make_user("liaison", "education", "990102")
    console = await console_client(caseworker)
    case_id = await new_case()
    page_url = f"/console/cases/{case_id}"
    page = await _post(console, f"{page_url}/meetings", page_url, scheduled_at="2099-01-05T09:30",
                       departments=["police", "education"], agenda="研究复学安排",
                       place="区未保中心")
    assert "会商邀请已发出" in page.text and "研究复学安排" in page.text
    invited = await (await console_client(liaison)).get("/console/tasks")
    assert "研究复学安排" in invited.text
    record_url = page.text.split('action="/console/meetings/')[1].split('"')[0]
    page = await _post(console, f"/console/meetings/{record_url}", page_url,
                       attended=["education", "police"], notes="学校同意接收",
                       decision_title=["下周一返校", ""], decision_department=["education",
                                                                             "police"],
                       decision_due=["3wd", "5wd"])
    assert "决定已成为任务" in page.text and "下周一返校" in page.text


async def test_closing_and_no_contact_from_the_case_page(new_case, make_user, console_client,
                                                         client, login):
    caseworker = await make_user("caseworker")
    api = await login(caseworker)
    case_id = await new_case()
    for step, body in (("events", {"event": "assess"}),
                       ("assessment", {"risk_level": "blue"}),
                       ("events", {"event": "handle"})):
        await client.post(f"/api/v1/cases/{case_id}/{step}", headers=api, json=body)
    console = await console_client(caseworker)
    page_url = f"/console/cases/{case_id}"
    page = await console.get(page_url)
    report_id = page.text.split('action="/console/reports/')[1].split("/")[0]
    page = await _post(console, f"/console/reports/{report_id}/no-contact", page_url,
                       reason="may_be_child")
    assert "已标记：不再联系该报告人" in page.text and "<strong>不联系</strong>" in page.text
    page = await _post(console, f"{page_url}/close", page_url, type="risk_removed",
                       reason="已妥善处置")
    assert "已结案" in page.text
