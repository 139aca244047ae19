"""Staff replies to texters: through the outbox and an RQ job to Twilio's REST API (a fake in
this process), retried through Twilio and Redis outages, refused sends, delivery status
callbacks in any order."""

import secrets

from sqlalchemy import select, update

from channels.sms import outbound as sms_outbound
from db.crypto import phone_index
from db.handlers import JobContext
from db.models import CaseEvent, Outbox, Report
from db.telephony import SmsMessage, SmsOptOut
from dispatch.worker.relay import relay_once
from tests.fixtures.twilio_fake import (
    ACCOUNT_SID,
    FROM_NUMBER,
    PUBLIC,
    dead_redis,
    make_due,
    mobile,
    scheduled,
    signed,
)

pytest_plugins = ("tests.fixtures.twilio",)

STATUS = "/channels/twilio/sms/status"


async def open_thread(client, make_user, login) -> tuple[dict, int, str]:
    """A texter's report and its thread; returns (operator headers, thread id, number)."""
    sender = mobile()
    params = {
        "MessageSid": "SM" + secrets.token_hex(16),
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "To": FROM_NUMBER,
        "Body": "有个孩子在路边乞讨，很瘦",
    }
    assert (await signed(client, "/channels/twilio/sms", params)).status_code == 200
    operator = await login(await make_user("operator"))
    threads = (await client.get("/api/v1/sms/threads?limit=1", headers=operator)).json()
    return operator, threads["items"][0]["id"], sender


async def reply(client, headers, thread_id: int, text: str) -> dict:
    response = await client.post(
        f"/api/v1/sms/threads/{thread_id}/replies", json={"text": text}, headers=headers
    )
    assert response.status_code == 202, response.text
    return response.json()


async def _submitting(sessions, message_id: int, **values) -> None:
    """The message as a worker leaves it when it starts sending (with `values`)."""
    async with sessions() as session, session.begin():
        await session.execute(
            update(SmsMessage)
            .where(SmsMessage.id == message_id)
            .values(status="submitting", **values)
        )


async def message(sessions, message_id: int) -> SmsMessage:
    async with sessions() as session:
        return await session.get(SmsMessage, message_id)


def status_params(sid: str, status: str, **extra: str) -> dict[str, str]:
    return {"MessageSid": sid, "AccountSid": ACCOUNT_SID, "MessageStatus": status, **extra}


async def callback(client, message_id: int, params: dict[str, str], **kwargs):
    path = f"{STATUS}?m={message_id}"
    return await signed(client, path, params, sign_url=kwargs.pop("sign_url", PUBLIC + path))


async def test_a_reply_goes_to_twilio_with_a_status_callback_and_statuses_only_advance(
    client, twilio, sessions, run_jobs, make_user, login
):
    operator, thread_id, sender = await open_thread(client, make_user, login)
    queued = await reply(client, operator, thread_id, "您好，请问孩子现在在哪个路口？")
    assert queued["status"] == "pending" and queued["direction"] == "out"
    await run_jobs()

    (sent,) = twilio.fake.requests
    assert sent.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert sent.form["To"] == sender and sent.form["From"] == FROM_NUMBER
    assert sent.form["Body"] == "您好，请问孩子现在在哪个路口？"
    assert sent.form["StatusCallback"] == f"{PUBLIC}{STATUS}?m={queued['id']}"
    assert sent.authorization.startswith("Basic ")
    stored = await message(sessions, queued["id"])
    assert stored.status == "queued" and stored.message_sid.startswith("SM")
    assert stored.attempts == 1

    sid = stored.message_sid
    for status in ("sent", "delivered"):
        done = await callback(client, queued["id"], status_params(sid, status))
        assert done.status_code == 204
    # Late, repeated and out-of-order callbacks never move the status back.
    for late in ("sent", "queued", "undelivered", "delivered"):
        await callback(client, queued["id"], status_params(sid, late))
    assert (await message(sessions, queued["id"])).status == "delivered"
    # A callback not signed by Twilio changes nothing.
    forged = await callback(
        client, queued["id"], status_params(sid, "read"), sign_url="http://testserver/x"
    )
    assert forged.status_code == 403
    assert (await message(sessions, queued["id"])).status == "delivered"
    read = await callback(client, queued["id"], status_params(sid, "read"))
    assert read.status_code == 204
    assert (await message(sessions, queued["id"])).status == "read"

    detail = (await client.get(f"/api/v1/sms/threads/{thread_id}", headers=operator)).json()
    assert [m["kind"] for m in detail["messages"]] == ["report", "reply"]
    assert detail["messages"][0]["auto_reply"].startswith("【未成年人救助保护热线】")
    async with sessions() as session:
        case_id = await session.scalar(
            select(Report.case_id).where(Report.phone_index == phone_index(sender))
        )
        events = (
            await session.execute(select(CaseEvent.event).where(CaseEvent.case_id == case_id))
        ).scalars()
        assert "sms_reply" in list(events)


async def test_a_twilio_outage_delays_a_reply_but_never_drops_it(
    client, twilio, sessions, run_jobs, make_user, login
):
    operator, thread_id, sender = await open_thread(client, make_user, login)
    twilio.fake.script = [
        (500, {"code": 20500, "message": "Internal Server Error", "status": 500}),
        (503, {"message": "Service Unavailable", "status": 503}),
    ]
    queued = await reply(client, operator, thread_id, "收到，我们正在核实")
    await run_jobs()
    stored = await message(sessions, queued["id"])
    assert stored.status == "retrying" and stored.error == "twilio_20500"
    (later,) = await scheduled(sessions)
    assert later.payload == {"message_id": queued["id"]}
    assert later.available_at > stored.updated_at  # a pause before the next attempt
    assert await run_jobs() == []  # nothing happens before it is due

    assert await make_due(sessions) == 1
    await run_jobs()
    assert (await message(sessions, queued["id"])).status == "retrying"
    assert await make_due(sessions) == 1
    await run_jobs()
    stored = await message(sessions, queued["id"])
    assert stored.status == "queued" and stored.attempts == 3 and stored.error is None
    assert [r.form["Body"] for r in twilio.fake.requests] == ["收到，我们正在核实"] * 3
    assert await scheduled(sessions) == []


async def test_a_redis_outage_delays_a_reply_but_never_drops_it(
    client, twilio, sessions, run_jobs, make_user, login
):
    operator, thread_id, _ = await open_thread(client, make_user, login)
    await run_jobs()  # the intake job of the texter's report
    queued = await reply(client, operator, thread_id, "请问您方便接电话吗？")
    assert await relay_once(sessions, dead_redis()) == 0
    (waiting,) = await scheduled(sessions)
    assert waiting.attempts == 1 and waiting.last_error.startswith("redis")
    assert twilio.fake.requests == []
    await make_due(sessions)
    await run_jobs()
    assert (await message(sessions, queued["id"])).status == "queued"
    assert len(twilio.fake.requests) == 1


async def test_twilio_refusing_a_reply_marks_it_failed_without_retrying(
    client, twilio, sessions, run_jobs, make_user, login
):
    operator, thread_id, sender = await open_thread(client, make_user, login)
    twilio.fake.script = [
        (400, {"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400}),
        (400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient"}),
    ]
    first = await reply(client, operator, thread_id, "您好")
    await run_jobs()
    stored = await message(sessions, first["id"])
    assert stored.status == "failed" and stored.error == "twilio_21211"
    assert await scheduled(sessions) == []

    # Twilio says the number opted out with Twilio itself: recorded as our opt-out too.
    second = await reply(client, operator, thread_id, "您好，还在吗")
    await run_jobs()
    assert (await message(sessions, second["id"])).status == "failed"
    async with sessions() as session:
        assert (await session.get(SmsOptOut, phone_index(sender))).keyword == "twilio"
    refused = await client.post(
        f"/api/v1/sms/threads/{thread_id}/replies", json={"text": "再试"}, headers=operator
    )
    assert refused.status_code == 409
    assert len(twilio.fake.requests) == 2


async def test_without_twilio_a_reply_waits_and_goes_out_once_configured(
    client, app, settings, twilio, sessions, run_jobs, make_user, login
):
    operator, thread_id, _ = await open_thread(client, make_user, login)
    queued = await reply(client, operator, thread_id, "您好，我们是热线工作人员")
    runtime = app.state.runtime
    configured, runtime.settings = runtime.settings, settings
    try:
        await run_jobs()
    finally:
        runtime.settings = configured
    stored = await message(sessions, queued["id"])
    assert stored.status == "retrying" and stored.error == "twilio_not_configured"
    assert twilio.fake.requests == []
    await make_due(sessions)
    await run_jobs()
    assert (await message(sessions, queued["id"])).status == "queued"


async def test_an_interrupted_send_is_tried_again_once_no_attempt_can_be_in_flight(
    client, twilio, sessions, run_jobs, make_user, login, frozen_clock
):
    operator, thread_id, _ = await open_thread(client, make_user, login)
    queued = await reply(client, operator, thread_id, "您好")
    # A worker marked it `submitting` and died before recording the answer.
    await _submitting(sessions, queued["id"], attempts=1, updated_at=frozen_clock.now())
    await run_jobs()  # RQ runs the job again at once: the attempt may still be in flight
    assert twilio.fake.requests == []
    (check,) = await scheduled(sessions)
    assert check.available_at == frozen_clock.now() + sms_outbound.IN_FLIGHT

    frozen_clock.advance(seconds=sms_outbound.IN_FLIGHT.total_seconds() + 1)
    await make_due(sessions)
    await run_jobs()
    stored = await message(sessions, queued["id"])
    assert stored.status == "queued" and stored.attempts == 2
    assert len(twilio.fake.requests) == 1


async def test_a_callback_that_beats_the_send_bookkeeping_is_not_undone(
    client, app, twilio, sessions, run_jobs, make_user, login
):
    operator, thread_id, _ = await open_thread(client, make_user, login)
    queued = await reply(client, operator, thread_id, "您好")
    await _submitting(sessions, queued["id"])
    async with sessions() as session, session.begin():
        await session.execute(
            update(Outbox)
            .where(Outbox.topic == "sms.send", Outbox.relayed_at.is_(None))
            .values(relayed_at=Outbox.created_at)
        )
    # Twilio took the message and called back before the job recorded Twilio's answer.
    sid = "SM" + secrets.token_hex(16)
    await callback(client, queued["id"], status_params(sid, "sent"))
    context = JobContext(app.state.runtime.sessions, app.state.runtime.settings)
    await sms_outbound._record_submitted(context, queued["id"], sid, "queued")
    stored = await message(sessions, queued["id"])
    assert stored.status == "sent" and stored.message_sid == sid


async def test_a_reply_nobody_could_send_for_days_is_given_up_visibly(
    client, twilio, sessions, run_jobs, make_user, login, frozen_clock
):
    operator, thread_id, _ = await open_thread(client, make_user, login)
    twilio.fake.script = [(500, {"message": "down", "status": 500})]
    queued = await reply(client, operator, thread_id, "您好")
    await run_jobs()
    assert (await message(sessions, queued["id"])).status == "retrying"
    frozen_clock.advance(hours=72, seconds=1)
    await make_due(sessions)
    await run_jobs()
    stored = await message(sessions, queued["id"])
    assert stored.status == "failed" and stored.error.startswith("gave_up")
    assert len(twilio.fake.requests) == 1
    detail = (await client.get(f"/api/v1/sms/threads/{thread_id}", headers=operator)).json()
    assert detail["messages"][-1]["status"] == "failed"


async def test_replies_are_checked_and_only_for_center_staff(client, twilio, make_user, login):
    operator, thread_id, _ = await open_thread(client, make_user, login)
    url = f"/api/v1/sms/threads/{thread_id}/replies"
    assert (await client.post(url, json={"text": "  "}, headers=operator)).status_code == 422
    too_long = {"text": "长" * 501}
    assert (await client.post(url, json=too_long, headers=operator)).status_code == 422
    liaison = await login(await make_user("liaison", "civil_affairs", "990100"))
    assert (await client.post(url, json={"text": "您好"}, headers=liaison)).status_code == 403
    assert (await client.post(url, json={"text": "您好"})).status_code == 401
    missing = await client.post(
        "/api/v1/sms/threads/999999999/replies", json={"text": "您好"}, headers=operator
    )
    assert missing.status_code == 404
    assert (await client.post(url, content=b"text", headers=operator)).status_code == 415
