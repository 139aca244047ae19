"""Supervision's console pages: the scorecard with its XLSX and PDF, 督查 orders answered by
the department and lifted by the center, 重点个案 with minutes, a case's 督导 note, the
periodic report; in a real browser, with a screenshot of each page in test-artifacts/."""

import io
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook
from playwright.async_api import expect
from sqlalchemy import select

from db.models import AuditLog, PeriodicReport, SupervisionOrder
from tests.fixtures.browser import screenshot, sign_in
from tests.fixtures.console import form_token
from workflows.supervision import REPORT_EVENT_LABELS

pytest_plugins = ("tests.fixtures.console", "tests.fixtures.browser")


async def test_scorecard_page_and_its_files(console_client, make_user, new_case):
    await new_case()
    supervisor = await make_user("supervisor", jurisdiction="990100")
    client = await console_client(supervisor)
    page = await client.get("/console/supervision/scorecard")
    assert page.status_code == 200
    assert "部门办理情况考核" in page.text and 'id="ranking"' in page.text
    assert "<svg" in page.text  # the on-time chart is drawn by the server

    xlsx = await client.get("/console/supervision/scorecard.xlsx")
    assert xlsx.status_code == 200
    book = load_workbook(io.BytesIO(xlsx.content))
    sheet = book["部门考核"]
    assert sheet.cell(2, 1).value == "排名" and sheet.cell(2, 4).value == "接收转介"
    assert sheet.max_row >= 4  # title, header, at least one office, the total

    pdf = await client.get("/console/supervision/scorecard.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert b"STSong-Light" in pdf.content  # Chinese drawn with the built-in CID font

    liaison = await console_client(await make_user("liaison", "police", "990102001"))
    refused = await liaison.get("/console/supervision/scorecard")
    assert refused.status_code == 403 and "没有权限" in refused.text


async def test_a_department_answers_an_order_on_its_console(
    console_client, make_user, new_case, sessions
):
    case_id = await new_case()
    center = await console_client(await make_user("supervisor", jurisdiction="990100"))
    page = await center.get("/console/supervision/orders")
    due = (datetime.now(UTC) + timedelta(days=3)).astimezone().strftime("%Y-%m-%dT%H:%M")
    opened = await center.post(
        "/console/supervision/orders",
        data={
            "csrf_token": form_token(page.text),
            "case_id": str(case_id),
            "department": "police",
            "reason": "未按时入户核查",
            "due_at": due,
        },
    )
    assert opened.status_code == 303
    listed = await center.get("/console/supervision/orders?status=open")
    assert "已挂牌督办" in listed.text and "未按时入户核查" in listed.text
    async with sessions() as session:
        order_id = await session.scalar(
            select(SupervisionOrder.id).where(SupervisionOrder.case_id == case_id)
        )
    assert f'data-order="{order_id}"' in listed.text

    liaison = await console_client(await make_user("liaison", "police", "990102001"))
    mine = await liaison.get("/console/supervision/orders")
    assert f'data-order="{order_id}"' in mine.text
    answered = await liaison.post(
        f"/console/supervision/orders/{order_id}/answer",
        data={"csrf_token": form_token(mine.text), "text": "已入户核查并出具告诫书"},
    )
    assert answered.status_code == 303
    after = await center.get("/console/supervision/orders?status=answered")
    assert "已入户核查并出具告诫书" in after.text


async def test_a_report_reviewed_on_the_page_is_audited_as_through_the_api(
    client, console_client, make_user, login, sessions
):
    """The audit trail names the step (审核, 报送) whichever way the supervisor took it."""
    writer = await login(await make_user("caseworker", jurisdiction="990103"))
    supervisor = await make_user("supervisor", jurisdiction="990103")
    path = "/supervision/reports/990103/2023Q3"  # no other test writes this one
    drafted = await client.put(f"/api/v1{path}", headers=writer, json={"narrative": "本期概况"})
    assert drafted.status_code == 200, drafted.text

    console = await console_client(supervisor)
    page = await console.get(f"/console{path}")
    reviewed = await console.post(
        f"/console{path}/review", data={"csrf_token": form_token(page.text), "comment": ""}
    )
    assert reviewed.status_code == 303, reviewed.text
    submitted = await client.post(f"/api/v1{path}/submit", headers=await login(supervisor), json={})
    assert submitted.status_code == 200, submitted.text

    async with sessions() as session:
        report_id = await session.scalar(
            select(PeriodicReport.id).where(
                PeriodicReport.district_code == "990103", PeriodicReport.period == "2023Q3"
            )
        )
        rows = (
            await session.execute(
                select(AuditLog.action, AuditLog.detail, AuditLog.actor_id)
                .where(AuditLog.object_type == "report", AuditLog.object_id == str(report_id))
                .where(
                    AuditLog.action.in_(["supervision.report_review", "supervision.report_submit"])
                )
                .order_by(AuditLog.id)
            )
        ).all()
    assert [(r.action, r.detail, r.actor_id) for r in rows] == [
        ("supervision.report_review", {"event": REPORT_EVENT_LABELS["review"]}, supervisor.id),
        ("supervision.report_submit", {"event": REPORT_EVENT_LABELS["submit"]}, supervisor.id),
    ]


@pytest.mark.slow
async def test_every_supervision_page_in_a_browser(browser, make_user, new_case):
    case_id = await new_case()
    supervisor = await make_user("supervisor", jurisdiction="990100")
    page = await sign_in(browser, supervisor.username)

    await page.goto("/console/supervision/scorecard")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("部门办理情况考核")
    await expect(page.locator("#ranking tr").nth(1)).to_be_visible()
    await screenshot(page, "supervision-scorecard")

    await page.goto(f"/console/supervision/cases/{case_id}")
    details = page.locator("details", has_text="挂牌督办本案")
    await details.locator("summary").click()
    await details.get_by_label("督办事由").fill("红色案件处置不力")
    await details.get_by_role("button", name="挂牌督办").click()
    await expect(page.locator(".flash")).to_contain_text("已挂牌督办")
    await page.get_by_label("督导意见").fill("评估不充分，需补充入户评估")
    await page.locator("input[name=action_1]").fill("三日内完成入户评估")
    await page.locator("select[name=department_1]").select_option("civil_affairs")
    await page.get_by_role("button", name="保存督导意见").click()
    await expect(page.locator(".flash")).to_contain_text("督导意见已记录")
    await expect(page.locator("#case-orders")).to_contain_text("个案督导要求：三日内完成入户评估")
    await screenshot(page, "supervision-case")

    await page.goto("/console/supervision/orders")
    await expect(page.locator("#orders")).to_contain_text("红色案件处置不力")
    await screenshot(page, "supervision-orders")

    await page.goto("/console/supervision/key-cases")
    await page.get_by_label("案件编号").fill(str(case_id))
    await page.get_by_label("理由").first.fill("多部门推诿，提交领导小组研究")
    await page.get_by_role("button", name="列为重点个案").click()
    card = page.locator(f"[data-case='{case_id}']")
    await card.locator("summary", has_text="记录会议纪要").click()
    await card.get_by_label("会议名称").fill("上半年未成年人保护工作领导小组会议")
    await card.get_by_label("会议纪要").fill("听取民政、公安汇报")
    await card.get_by_label("决定事项").fill("民政牵头落实临时监护")
    await card.get_by_role("button", name="保存纪要").click()
    await expect(page.locator(f"[data-case='{case_id}']")).to_contain_text("民政牵头落实临时监护")
    await screenshot(page, "supervision-key-cases")

    await page.goto("/console/supervision/reports?period=2025Q1")
    await expect(page.locator("#report-lines")).to_contain_text("逾期未报")
    await screenshot(page, "supervision-reports")

    writer = await make_user("supervisor", jurisdiction="990104")
    await page.get_by_role("button", name="退出").click()
    page = await sign_in(browser, writer.username)
    await page.goto("/console/supervision/reports/990104/2025Q2")
    await page.get_by_label("工作情况（真实、准确，典型情况深入提炼）").fill("本季度开展排查。")
    await page.locator("input[name=title_1]").fill("某村留守儿童帮扶")
    await page.locator("textarea[name=text_1]").fill("儿童主任发现后报告，民政落实帮扶。")
    await page.get_by_role("button", name="保存").click()
    await page.get_by_role("button", name="审核通过（固定数据）").click()
    await expect(page.locator("#report-status")).to_have_text("已审核")
    await page.get_by_role("button", name="报送市级").click()
    await expect(page.locator("#report-status")).to_have_text("已报送")
    await expect(page.locator("[data-rate='screening']")).to_contain_text("排查分类率")
    await screenshot(page, "supervision-report")
