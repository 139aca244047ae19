"""Inbound SMS on Twilio: signed webhooks, receipts, threading within the window, STOP/HELP,
emergencies raised by a later message, masked numbers."""

import logging
import re
import secrets

from sqlalchemy import func, select

from db.crypto import phone_index
from db.models import Case, CaseEvent, Referral, Report
from db.telephony import SmsMessage, SmsOptOut, SmsThread
from tests.fixtures.twilio_fake import (
    PUBLIC,
    mobile,
    parse,
    signature,
    signed,
    sms,  # noqa: F401
)

pytest_plugins = ("tests.fixtures.twilio",)

PATH = "/channels/twilio/sms"
CODE = re.compile(r"[0-9A-Z]{5}-[0-9A-Z]{5}")


def reply_of(response) -> str | None:
    messages = parse(response).findall("Message")
    assert len(messages) <= 1
    return messages[0].text if messages else None


async def reports_from(sessions, phone: str) -> list[Report]:
    async with sessions() as session:
        rows = await session.execute(
            # as they came: ids order only by their millisecond (0035)
            select(Report).where(Report.phone_index == phone_index(phone))
            .order_by(Report.created_at, Report.id)
        )
        return list(rows.scalars())


async def count(sessions, *where) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(SmsMessage).where(*where))


async def test_a_first_sms_opens_a_report_and_a_retry_creates_nothing(client, twilio, sessions):
    sender = mobile()
    params = sms(sender, "学校门口有个孩子天天被几个人勒索要钱")
    first = await signed(client, PATH, params)
    text = reply_of(first)
    code = CODE.search(text).group()
    assert "回执编号" in text and "110" in text
    assert (await client.get(f"/api/v1/receipts/{code}")).json()["status"] == "received"

    (report,) = await reports_from(sessions, sender)
    assert report.channel == "sms" and report.external_id == params["MessageSid"]
    assert report.description == params["Body"]
    assert "bullying" in report.categories
    async with sessions() as session:
        case = await session.get(Case, report.case_id)
        thread = (
            await session.execute(select(SmsThread).where(SmsThread.report_id == report.id))
        ).scalar_one()
    assert case.state == "discovered" and not case.emergency
    assert thread.phone == sender and thread.case_id == case.id

    # Twilio retries the webhook: the same answer, nothing new.
    again = await signed(client, PATH, params)
    assert reply_of(again) == text
    assert len(await reports_from(sessions, sender)) == 1
    assert await count(sessions, SmsMessage.message_sid == params["MessageSid"]) == 1


async def test_sender_numbers_are_normalized(client, twilio, sessions):
    national = f"138{secrets.randbelow(10**8):08d}"
    await signed(client, PATH, sms(national, "有个小孩在桥洞下面睡觉，身上很脏"))
    (report,) = await reports_from(sessions, "+86" + national)
    assert report.reporter_phone == "+86" + national


async def test_later_messages_join_the_thread_until_the_window_passes(
    client, twilio, sessions, frozen_clock, run_jobs, make_user, login
):
    sender = mobile()
    first = reply_of(await signed(client, PATH, sms(sender, "邻居家的孩子总是一个人关在家里")))
    code = CODE.search(first).group()

    frozen_clock.advance(hours=47)
    followup = reply_of(await signed(client, PATH, sms(sender, "今天还是没人管，哭了一下午")))
    assert code in followup and "补充" in followup
    (report,) = await reports_from(sessions, sender)
    async with sessions() as session:
        thread = (
            await session.execute(select(SmsThread).where(SmsThread.report_id == report.id))
        ).scalar_one()
        kinds = (
            await session.execute(
                select(SmsMessage.kind)
                .where(SmsMessage.thread_id == thread.id)
                .order_by(SmsMessage.id)
            )
        ).scalars()
        events = (
            await session.execute(
                select(CaseEvent.event).where(CaseEvent.case_id == report.case_id)
            )
        ).scalars()
        assert list(kinds) == ["report", "followup"]
        assert "sms_received" in list(events)

    # A staff reply keeps the conversation open: the window runs from the last message.
    frozen_clock.advance(hours=40)
    operator = await login(await make_user("operator"))
    thread_id = (
        await client.get(f"/api/v1/sms/threads?case_id={report.case_id}", headers=operator)
    ).json()["items"][0]["id"]
    url = f"/api/v1/sms/threads/{thread_id}/replies"
    assert (
        await client.post(url, json={"text": "请问孩子几岁？"}, headers=operator)
    ).status_code == 202
    await run_jobs()
    frozen_clock.advance(hours=40)
    answer = reply_of(await signed(client, PATH, sms(sender, "大概七八岁")))
    assert code in answer
    assert len(await reports_from(sessions, sender)) == 1

    # 48 hours of silence end the thread.
    frozen_clock.advance(hours=48, minutes=1)
    later = reply_of(await signed(client, PATH, sms(sender, "孩子又被一个人关在家里了")))
    assert CODE.search(later).group() != code
    assert len(await reports_from(sessions, sender)) == 2


async def test_a_message_after_the_case_is_closed_opens_a_new_report(client, twilio, sessions):
    sender = mobile()
    await signed(client, PATH, sms(sender, "有个孩子没上学，在工地打工"))
    (report,) = await reports_from(sessions, sender)
    async with sessions() as session, session.begin():
        (await session.get(Case, report.case_id)).state = "invalid"
    await signed(client, PATH, sms(sender, "那个孩子还在工地"))
    assert len(await reports_from(sessions, sender)) == 2


async def test_unsigned_or_wrongly_signed_sms_is_refused_and_creates_nothing(
    client, twilio, sessions
):
    sender = mobile()
    params = sms(sender, "有孩子被打")
    missing = await client.post(PATH, data=params)
    assert missing.status_code == 403
    assert missing.json()["error"]["code"] == "invalid_signature"
    assert (await signed(client, PATH, params, token="another-token")).status_code == 403
    # Signed over the URL the service itself sees, not the public one Twilio called.
    behind_proxy = await signed(client, PATH, params, sign_url="http://testserver" + PATH)
    assert behind_proxy.status_code == 403
    # Signed, then tampered with.
    tampered = await client.post(
        PATH,
        data={**params, "Body": "别的内容"},
        headers={"X-Twilio-Signature": signature(PUBLIC + PATH, params)},
    )
    assert tampered.status_code == 403
    assert await count(sessions, SmsMessage.phone_index == phone_index(sender)) == 0
    assert await reports_from(sessions, sender) == []
    # The same request, rightly signed, goes through.
    assert (await signed(client, PATH, params)).status_code == 200


async def test_without_twilio_configured_signed_webhooks_get_503(client, app, settings):
    params = sms(mobile(), "有孩子被打")
    assert (await client.post(PATH, data=params)).status_code == 403  # unsigned: never Twilio
    refused = await signed(client, PATH, params)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "twilio_not_configured"
    runtime = app.state.runtime
    runtime.settings = settings.model_copy(
        update={"twilio_auth_token": "x", "hotline_public_url": None}
    )
    try:
        no_public_url = await signed(client, PATH, params, token="x")
    finally:
        runtime.settings = settings
    assert no_public_url.status_code == 503


async def test_stop_is_honoured_and_start_resumes(
    client, twilio, sessions, run_jobs, make_user, login
):
    operator = await login(await make_user("operator"))
    sender = mobile()
    await signed(client, PATH, sms(sender, "楼下有孩子在乞讨"))
    (report,) = await reports_from(sessions, sender)
    threads = await client.get(f"/api/v1/sms/threads?case_id={report.case_id}", headers=operator)
    thread_id = threads.json()["items"][0]["id"]
    queued = await client.post(
        f"/api/v1/sms/threads/{thread_id}/replies",
        json={"text": "请问孩子大概几岁？"},
        headers=operator,
    )
    assert queued.status_code == 202

    stop = reply_of(await signed(client, PATH, sms(sender, "退订")))
    assert "退订" in stop and "开始" in stop
    timeline = (await client.get(f"/api/v1/cases/{report.case_id}", headers=operator)).json()
    assert "sms_opted_out" in [e["event"] for e in timeline["timeline"]]
    refused = await client.post(
        f"/api/v1/sms/threads/{thread_id}/replies", json={"text": "您好"}, headers=operator
    )
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "sms_opted_out"
    # The reply queued before the STOP is not sent either.
    await run_jobs()
    assert twilio.fake.requests == []
    detail = (await client.get(f"/api/v1/sms/threads/{thread_id}", headers=operator)).json()
    assert detail["opted_out"] is True
    assert [m["status"] for m in detail["messages"] if m["direction"] == "out"] == ["suppressed"]
    # A STOP again gets no answer; a new tip is recorded but not answered.
    assert reply_of(await signed(client, PATH, sms(sender, "STOP"))) is None
    assert reply_of(await signed(client, PATH, sms(sender, "孩子还在楼下"))) is None
    detail = (await client.get(f"/api/v1/sms/threads/{thread_id}", headers=operator)).json()
    assert [m["kind"] for m in detail["messages"] if m["direction"] == "in"] == [
        "report",
        "stop",
        "stop",
        "followup",
    ]

    start = reply_of(await signed(client, PATH, sms(sender, "开始")))
    assert "恢复" in start
    resumed = await client.post(
        f"/api/v1/sms/threads/{thread_id}/replies", json={"text": "收到，谢谢"}, headers=operator
    )
    assert resumed.status_code == 202
    await run_jobs()
    assert [r.form["Body"] for r in twilio.fake.requests] == ["收到，谢谢"]


async def test_stop_words_in_any_form_but_only_as_the_whole_message(client, twilio, sessions):
    for word in ("ｓｔｏｐ！", " 取消 ", "Unsubscribe"):
        sender = mobile()
        await signed(client, PATH, sms(sender, word))
        async with sessions() as session:
            assert await session.get(SmsOptOut, phone_index(sender)) is not None, word
        assert await reports_from(sessions, sender) == []  # a keyword opens no report
    sender = mobile()
    answer = reply_of(await signed(client, PATH, sms(sender, "请取消孩子的打工，他才12岁")))
    assert CODE.search(answer)
    async with sessions() as session:
        assert await session.get(SmsOptOut, phone_index(sender)) is None


async def test_help_answers_with_the_hotline_and_opens_nothing(client, twilio, sessions):
    sender = mobile()
    for word in ("帮助", "HELP", ""):
        answer = reply_of(await signed(client, PATH, sms(sender, word)))
        assert "未成年人救助保护热线" in answer and "110" in answer
        assert "工作日08:00-22:00" in answer
    assert await reports_from(sessions, sender) == []


async def test_danger_in_a_later_message_makes_the_case_an_emergency_for_police(
    client, twilio, sessions, run_jobs, make_user, login
):
    sender = mobile()
    await signed(client, PATH, sms(sender, "隔壁的孩子经常没人照顾"))
    (report,) = await reports_from(sessions, sender)
    await run_jobs()
    operator = await login(await make_user("operator"))
    case = (await client.get(f"/api/v1/cases/{report.case_id}", headers=operator)).json()
    assert case["emergency"] is False and case["referrals"] == []

    await signed(client, PATH, sms(sender, "他爸爸现在正在打他，快来"))
    assert len(await reports_from(sessions, sender)) == 1
    await run_jobs()
    case = (await client.get(f"/api/v1/cases/{report.case_id}", headers=operator)).json()
    assert case["emergency"] is True
    assert [r["department"] for r in case["referrals"]] == ["police"]
    raised = [e for e in case["timeline"] if e["event"] == "emergency_raised"]
    assert len(raised) == 1 and "正在打" in raised[0]["data"]["matched"]

    # More danger in the thread: already an emergency, police are not sent twice.
    await signed(client, PATH, sms(sender, "救命，现在还在打"))
    await run_jobs()
    async with sessions() as session:
        police = await session.scalar(
            select(func.count()).where(
                Referral.case_id == report.case_id, Referral.department_code == "police"
            )
        )
    assert police == 1


async def test_a_first_message_in_danger_is_an_emergency_at_once(
    client, twilio, sessions, run_jobs
):
    sender = mobile()
    answer = reply_of(await signed(client, PATH, sms(sender, "救命！有人持刀在打孩子")))
    assert "紧急" in answer and CODE.search(answer)
    (report,) = await reports_from(sessions, sender)
    await run_jobs()
    async with sessions() as session:
        case = await session.get(Case, report.case_id)
        departments = (
            await session.execute(
                select(Referral.department_code).where(Referral.case_id == case.id)
            )
        ).scalars()
        assert case.emergency and report.in_danger_now
        assert list(departments) == ["police"]


async def test_numbers_are_masked_and_threads_are_for_the_center(
    client, twilio, make_user, login, caplog
):
    sender = mobile()
    body = "小区里有个孩子被关在家里好几天了"
    with caplog.at_level(logging.DEBUG):
        await signed(client, PATH, sms(sender, body))
    assert sender[3:] not in caplog.text and body not in caplog.text
    assert sender[-4:] in caplog.text  # the masked form: 138****1234

    operator = await login(await make_user("operator"))
    items = (await client.get("/api/v1/sms/threads?limit=200", headers=operator)).json()["items"]
    mine = [t for t in items if t["phone"] == sender[3:6] + "****" + sender[-4:]]
    assert len(mine) == 1
    detail = await client.get(f"/api/v1/sms/threads/{mine[0]['id']}", headers=operator)
    assert detail.json()["messages"][0]["body"] == body
    assert sender[3:] not in detail.text

    liaison = await login(await make_user("liaison", "police", "990102"))
    assert (
        await client.get(f"/api/v1/sms/threads/{mine[0]['id']}", headers=liaison)
    ).status_code == 403
    # An SMS report has no jurisdiction yet: only the city center sees it.
    district = await login(await make_user("operator", jurisdiction="990102"))
    hidden = await client.get(f"/api/v1/sms/threads/{mine[0]['id']}", headers=district)
    assert hidden.status_code == 404
