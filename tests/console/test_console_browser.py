"""Each role's main path in a real browser: Debian's Chromium, headless, driven by Playwright,
against the app served over HTTP. Sign in, see, act, see the result; a screenshot of each
role's main page is kept in test-artifacts/."""

import asyncio
import re
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select, update

from db.models import AuditLog, Referral
from db.telephony import VoiceCall
from tests.fixtures.browser import (
    WAIT,
    screenshot,
    sign_in,
)
from tests.fixtures.console import unique_text
from tests.fixtures.reports import report

pytest_plugins = ("tests.fixtures.console", "tests.fixtures.twilio", "tests.fixtures.browser")
pytestmark = pytest.mark.slow  # a real browser: tens of seconds


async def test_operator_registers_a_call_sees_reports_arrive_and_replies_by_sms(
    browser, make_user, seed, live_url, sessions, twilio, run_jobs
):
    operator = await make_user("operator")
    call_sid = await seed.waiting_call()
    thread_id, _ = await seed.sms_thread(unique_text("路边有个孩子在乞讨 "))
    page = await sign_in(browser, operator.username)
    await expect(page).to_have_url(f"{live_url}/console/operator")
    await expect(page.get_by_role("heading", name="来电与报告")).to_be_visible()

    # Live: a report filed elsewhere shows up without reloading.
    text = unique_text("放学后孩子独自在桥下过夜 ")
    async with httpx.AsyncClient(base_url=live_url) as api:
        filed = await api.post("/api/v1/reports", json=report(description=text))
        assert filed.status_code == 201
    row = page.locator("#incoming tbody tr", has_text=text)
    await expect(row).to_be_visible(timeout=WAIT)
    await expect(row).to_have_class(re.compile(r"\bnew\b"))  # an emergency too, maybe
    await expect(row).to_contain_text("138****8000")  # the reporter's phone, masked
    await expect(page.locator("#incoming")).not_to_contain_text("13800138000")
    await screenshot(page, "operator")

    # Register a report while on the call: linked to the call, receipt code shown.
    queue_row = page.locator("#queue tr", has_text="139****5678")
    await queue_row.get_by_role("link", name="接听登记").click()
    await expect(page.get_by_role("heading", name="来电登记报告")).to_be_visible()
    call_text = unique_text("来电称邻居家孩子长期无人照料，编号")
    await page.get_by_label("来电内容").fill(call_text)
    await page.get_by_label("留守流动").check()
    await page.get_by_label("所属辖区").select_option("990102002001")
    await page.get_by_role("button", name="登记并关联本次来电").click()
    await expect(page.get_by_role("status")).to_contain_text("已登记并关联来电，回执码")
    await expect(page.locator("#reports")).to_contain_text(call_text)
    await expect(page.locator("#timeline")).to_contain_text("来电关联")
    case_url = page.url
    async with sessions() as session:
        call = (
            await session.execute(select(VoiceCall).where(VoiceCall.call_sid == call_sid))
        ).scalar_one()
    assert call.report_id and case_url.endswith(f"/console/cases/{call.case_id}")

    # SMS: read the thread, reply, see the reply on the thread.
    await page.get_by_role("link", name="短信").click()
    await page.get_by_role("link", name=f"会话#{thread_id}").click()
    await page.get_by_label("回复内容").fill("您好，已收到，我们会尽快核实处理。")
    await page.get_by_role("button", name="发送回复").click()
    await expect(page.get_by_role("status")).to_have_text("回复已提交发送")
    await expect(page.locator("#messages")).to_contain_text("您好，已收到，我们会尽快核实处理。")
    await run_jobs()  # the reply leaves through the outbox, to (the fake) Twilio
    assert "您好，已收到，我们会尽快核实处理。" in [r.form["Body"] for r in twilio.fake.requests]

    # Search finds the registered case by its words; the phone is masked there too.
    await page.get_by_role("link", name="案件搜索").click()
    # Words with Chinese in them: ten hex digits alone can pass for a receipt code (1 in 32),
    # which the search then looks up as a code instead of as words.
    await page.get_by_label("案件编号、回执码、电话或关键词").fill(call_text[-12:])
    await page.get_by_role("button", name="搜索").click()
    results = page.locator("#results")
    await expect(results.get_by_role("link")).to_have_count(1)
    await results.get_by_role("link").click()
    await expect(page).to_have_url(case_url)
    async with sessions() as session:
        actions = set(
            (
                await session.execute(
                    select(AuditLog.action).where(AuditLog.actor_id == operator.id)
                )
            ).scalars()
        )
    assert {"auth.login", "case.list", "call.report", "sms.read", "sms.reply"} <= actions
    assert {"case.search", "case.read"} <= actions


async def test_caseworker_assesses_handles_confers_and_reroutes_a_returned_referral(
    browser, make_user, new_case, client, login, sessions, live_url
):
    caseworker = await make_user("caseworker")
    case_id = await new_case(categories=["dropout"], situations=[])
    education = await make_user("liaison", "education", "990102")
    headers = await login(education)
    async with sessions() as session:
        referral_id = (
            await session.execute(
                select(Referral.id).where(
                    Referral.case_id == case_id, Referral.department_code == "education"
                )
            )
        ).scalar_one()
    assert (await client.post(f"/api/v1/referrals/{referral_id}/claim", headers=headers)).is_success
    returned = await client.post(
        f"/api/v1/referrals/{referral_id}/return",
        json={"reason": "学生户籍在湖西区，应由湖西区教育局办理"},
        headers=headers,
    )
    assert returned.is_success

    page = await sign_in(browser, caseworker.username)
    await expect(page).to_have_url(f"{live_url}/console/cases")
    await expect(page.locator("#to-assess")).to_contain_text(f"#{case_id}")
    await expect(page.locator("#to-route")).to_contain_text("学生户籍在湖西区")
    await screenshot(page, "caseworker")

    await page.locator("#to-assess").get_by_role("link", name=f"#{case_id}").click()
    await expect(page.get_by_role("heading", name=f"案件 #{case_id}")).to_be_visible()
    await page.get_by_role("button", name="开始评估").click()
    await expect(page.get_by_role("status")).to_have_text("已完成流程操作")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("评估")

    # Handling needs a risk level first: the refusal says so.
    await page.get_by_role("button", name="开始处置").click()
    await expect(page.get_by_role("status")).to_contain_text("开始处置前需要先评定风险等级")

    assessment = page.locator("#assessment")
    await assessment.get_by_label("风险等级").select_option("orange")
    await assessment.get_by_label("教育救助").check()
    await assessment.get_by_label("家庭监护评估").fill("父母外出务工，由年迈祖母照料")
    await assessment.get_by_role("button", name="保存评估").click()
    await expect(page.get_by_role("status")).to_have_text("评估已保存")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("橙")

    # Re-route the returned share to the district where the pupil is registered.
    route = page.locator("#referrals form")
    await route.get_by_label("部门").select_option("education")
    await route.get_by_label("承办机构").select_option(label="东湖市湖西区教育")
    await route.get_by_role("button", name="转介").click()
    await expect(page.get_by_role("status")).to_have_text("已转介")
    await expect(page.locator("#referrals")).to_contain_text("东湖市湖西区")

    await page.get_by_role("button", name="开始处置").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("处置")

    conference = page.locator("#conferences")
    await conference.get_by_label("教育", exact=True).check()
    await conference.get_by_label("民政").check()
    await conference.get_by_label("会商记录").fill("教育、民政共同商定复学方案")
    await conference.get_by_role("button", name="保存会商记录").click()
    await expect(page.get_by_role("status")).to_have_text("会商记录已保存")
    await expect(conference).to_contain_text("教育、民政共同商定复学方案")
    await expect(page.locator("#timeline")).to_contain_text("个案会商")


async def test_liaison_claims_reports_progress_and_completes(
    browser, make_user, new_case, sessions, live_url
):
    liaison = await make_user("liaison", "police", "990102001")
    case_id = await new_case()
    page = await sign_in(browser, liaison.username)
    await expect(page).to_have_url(f"{live_url}/console/liaison")
    row = page.locator("#queued tr", has_text=f"案件#{case_id}")
    await expect(row).to_contain_text("剩余")  # the claim deadline, as time left
    await screenshot(page, "liaison")

    await row.get_by_role("button", name="认领").click()
    await expect(page.get_by_role("status")).to_have_text("认领成功，请尽快开始办理")
    await expect(page.locator("#due")).to_contain_text("首次处置")
    await page.get_by_label("进展说明").fill("已联系学校核实情况")
    await page.get_by_role("button", name="报告进展").click()
    await expect(page.get_by_role("status")).to_have_text("进展已记录")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("办理中")
    await page.get_by_label("办理结果").fill("已对监护人训诫，儿童暂由亲属照料")
    await page.get_by_role("button", name="办结").click()
    await expect(page.get_by_role("status")).to_have_text("已办结")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("已办结")

    await page.get_by_role("link", name="转介队列").click()
    await expect(page.locator("#mine")).not_to_contain_text(f"案件#{case_id}")
    async with sessions() as session:
        referral = (
            await session.execute(
                select(Referral).where(
                    Referral.case_id == case_id, Referral.department_code == "police"
                )
            )
        ).scalar_one()
    assert referral.status == "completed" and referral.claimed_by == liaison.id


async def test_supervisor_sees_the_deadline_board_figures_exports_and_the_audit_log(
    browser, make_user, new_case, sessions, live_url
):
    supervisor = await make_user("supervisor")
    case_id = await new_case()
    async with sessions() as session, session.begin():
        await session.execute(
            update(Referral)
            .where(Referral.case_id == case_id, Referral.department_code == "police")
            .values(escalation=3)
        )
    page = await sign_in(browser, supervisor.username)
    await expect(page).to_have_url(f"{live_url}/console/board")
    await expect(page.locator("#flagged")).to_contain_text(f"#{case_id}")
    await screenshot(page, "supervisor")

    await page.get_by_role("link", name="统计与季度报表").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("季度")
    assert int(await page.locator("#case-total").inner_text()) >= 1
    channels = page.locator("[data-breakdown='来源渠道']")
    await expect(channels).to_contain_text("强制报告表单")
    await expect(channels.locator("svg rect").first).to_have_attribute("width", "100.0")
    await screenshot(page, "supervisor-stats")

    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="CSV").click()
    download = await download_info.value
    path = Path(await download.path())
    text = await asyncio.to_thread(path.read_text, encoding="utf-8-sig")
    assert text.startswith("案件编号,受理时间")
    assert any(line.startswith(f"{case_id},") for line in text.splitlines())
    assert "13800138000" not in text and "李老师" not in text

    await page.get_by_role("link", name="审计日志").click()
    rows = page.locator("#audit-rows")
    await expect(rows).to_contain_text("导出季度报表")
    await expect(rows).to_contain_text(f"supervisor:{supervisor.username}")
    await expect(page.get_by_role("button", name="删除")).to_have_count(0)


async def shows_as_text(page: Page, where: str, *texts: str) -> None:
    """Each text is on screen as typed, and nothing it carried became an element."""
    area = page.locator(where)
    for text in texts:
        await expect(area).to_contain_text(text)
    injected = page.locator("[onerror], [onload], img[src='x'], script:not([src])")
    await expect(injected).to_have_count(0)


async def test_markup_in_reports_notes_and_messages_shows_as_text_on_every_page(
    browser, make_user, hostile, live_url
):
    supervisor = await make_user("supervisor")  # the center's, at the root: every desk page
    page = await sign_in(browser, supervisor.username)
    await page.get_by_role("link", name="来电与报告").click()
    await expect(page.get_by_role("heading", name="来电与报告")).to_be_visible()

    bad = await hostile()  # arrives in the live list while the page is open
    link = page.get_by_role("link", name=f"#{bad.case_id}", exact=True)
    row = page.locator("#incoming tbody tr", has=link)
    await expect(row).to_be_visible(timeout=WAIT)
    await shows_as_text(page, "#incoming", bad.description)

    await row.get_by_role("link", name=f"#{bad.case_id}", exact=True).click()
    await expect(page.get_by_role("heading", name=f"案件 #{bad.case_id}")).to_be_visible()
    await shows_as_text(page, "#reports", bad.description, bad.child, bad.reporter)
    await shows_as_text(page, "#timeline", bad.note)
    await shows_as_text(page, "#referrals", bad.reason)

    await page.get_by_role("link", name="案件搜索").click()
    await page.get_by_label("案件编号、回执码、电话或关键词").fill(str(bad.case_id))
    await page.get_by_role("button", name="搜索").click()
    await shows_as_text(page, "#results", bad.description)

    await page.goto(f"/console/sms/{bad.thread_id}")
    await shows_as_text(page, "#messages", bad.sms)
    await page.goto(f"/console/referrals/{bad.police_referral_id}")
    await shows_as_text(page, "main", bad.description, bad.child, bad.note)
    await page.get_by_role("link", name="督办看板").click()
    await shows_as_text(page, "#to-route", bad.reason)

    await page.get_by_role("navigation").get_by_role("link", name="审计日志").click()
    await page.get_by_label("操作人").fill(bad.username)
    await page.get_by_role("button", name="筛选").click()
    await shows_as_text(page, "#audit-rows", bad.username)
    await expect(page.get_by_label("操作人")).to_have_value(bad.username)

    # The liaison who works the share sees the same text, as text.
    await page.get_by_role("button", name="退出").click()
    await expect(page.get_by_role("heading", name="工作人员登录")).to_be_visible()
    page = await sign_in(browser, bad.police.username)
    await expect(page).to_have_url(f"{live_url}/console/liaison")
    await page.locator("#mine").get_by_role("link", name="办理").first.click()
    await page.goto(f"/console/referrals/{bad.police_referral_id}")
    await shows_as_text(page, "main", bad.description, bad.reporter, bad.note)
