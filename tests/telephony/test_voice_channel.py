"""The hotline on Twilio Voice: greeting and menu in TwiML, the emergency queue served first,
voicemail out of hours or when nobody answers in time (a report with the recording and a
call-back task), call status, blocked callers, and operators' work during a call."""

import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select

from db.telephony import VoiceCall, VoiceCallback
from tests.fixtures.twilio_fake import ACCOUNT_SID, FROM_NUMBER, PUBLIC, mobile, parse, signed
from tests.fixtures.voice import CLOSED, OPEN, SHANGHAI, VOICE, call, new_sid, post, ring_and_choose

pytest_plugins = ("tests.fixtures.twilio",)

EMERGENCY_QUEUE, NORMAL_QUEUE = "hotline-emergency", "hotline-normal"


def said(root) -> str:
    texts = []
    for say in root.iter("Say"):
        assert say.get("language") == "zh-CN"
        texts.append(say.text or "")
    return "".join(texts)


async def stored_call(sessions, sid: str) -> VoiceCall:
    async with sessions() as session:
        return (
            await session.execute(select(VoiceCall).where(VoiceCall.call_sid == sid))
        ).scalar_one()


async def test_a_call_hears_a_chinese_greeting_and_a_one_key_menu(client, twilio, frozen_clock):
    frozen_clock.at = OPEN
    sid, caller = new_sid(), mobile()
    response = await post(client, "", call(sid, caller))
    root = parse(response)
    gather = root.find("Gather")
    assert gather.get("numDigits") == "1" and gather.get("method") == "POST"
    assert gather.get("action") == f"{PUBLIC}{VOICE}/menu"
    assert "按1" in said(gather) and "危险" in said(gather)
    assert root.find("Redirect").text == f"{PUBLIC}{VOICE}/menu"  # no key: the normal way
    # A retried webhook gets the same answer and one call record.
    again = await post(client, "", call(sid, caller))
    assert again.content == response.content


async def test_key_1_goes_to_the_emergency_queue_which_operators_take_first(
    client, twilio, frozen_clock, sessions, make_user, login
):
    frozen_clock.at = OPEN
    operator = await login(await make_user("operator"))
    normal_sid, urgent_sid = new_sid(), new_sid()
    normal = await ring_and_choose(client, normal_sid, mobile(), None)
    enqueue = normal.find("Enqueue")
    assert enqueue.text == NORMAL_QUEUE
    assert enqueue.get("waitUrl") == f"{PUBLIC}{VOICE}/wait"
    assert enqueue.get("action") == f"{PUBLIC}{VOICE}/queue-exit"
    frozen_clock.advance(seconds=20)
    urgent = await ring_and_choose(client, urgent_sid, mobile(), "1")
    assert urgent.find("Enqueue").text == EMERGENCY_QUEUE
    assert "优先" in said(urgent)
    # The first answer stands: a retried menu request with another key changes nothing.
    retried = await post(client, "/menu", call(urgent_sid, mobile(), Digits="2"))
    assert parse(retried).find("Enqueue").text == EMERGENCY_QUEUE

    queue = (await client.get("/api/v1/voice/queue", headers=operator)).json()
    assert queue["serve_first"] == EMERGENCY_QUEUE
    mine = [c["call_sid"] for c in queue["items"] if c["call_sid"] in (normal_sid, urgent_sid)]
    assert mine == [urgent_sid, normal_sid]  # emergency first, though it came later
    assert queue["waiting_by_queue"][EMERGENCY_QUEUE] >= 1

    console = parse(await post(client, "/dequeue", {"CallSid": new_sid(), "From": "client:op"}))
    dialled = console.find("Dial/Queue")
    assert dialled.text == EMERGENCY_QUEUE and dialled.get("url") == f"{PUBLIC}{VOICE}/connect"
    connected = parse(await post(client, "/connect", {"CallSid": urgent_sid, "QueueTime": "12"}))
    assert "接通" in said(connected)
    assert (await stored_call(sessions, urgent_sid)).answered_at is not None
    queue = (await client.get("/api/v1/voice/queue", headers=operator)).json()
    assert urgent_sid not in [c["call_sid"] for c in queue["items"]]
    # Once the call ends, the queue result is recorded; no call-back is owed.
    bridged = parse(
        await post(
            client,
            "/queue-exit",
            {"CallSid": urgent_sid, "QueueResult": "bridged", "QueueTime": "12"},
        )
    )
    assert bridged.find("Hangup") is not None


async def test_no_operator_in_time_the_caller_leaves_a_voicemail_that_becomes_a_report(
    client, twilio, frozen_clock, sessions, run_jobs, make_user, login
):
    frozen_clock.at = OPEN
    operator = await login(await make_user("operator"))
    sid, caller = new_sid(), mobile()
    await ring_and_choose(client, sid, caller, "1")
    hold = parse(await post(client, "/wait", {"CallSid": sid, "QueueTime": "10"}))
    assert "请不要挂机" in said(hold) and hold.find("Pause") is not None
    assert hold.find("Leave") is None
    # The emergency queue's longest wait (60 s) has passed: out of the queue...
    leave = parse(await post(client, "/wait", {"CallSid": sid, "QueueTime": "60"}))
    assert leave.find("Leave") is not None
    # ...and to voicemail.
    exit_ = parse(
        await post(
            client, "/queue-exit", {"CallSid": sid, "QueueResult": "leave", "QueueTime": "60"}
        )
    )
    record = exit_.find("Record")
    assert record.get("action") == f"{PUBLIC}{VOICE}/recording"
    assert record.get("maxLength") == "180" and record.get("finishOnKey") == "#"
    assert "110" in said(exit_)

    recording = {
        "CallSid": sid,
        "From": caller,
        "RecordingSid": "RE" + secrets.token_hex(16),
        "RecordingUrl": f"{twilio.fake.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE1",
        "RecordingDuration": "42",
    }
    thanks = parse(await post(client, "/recording", recording))
    assert "留言已收到" in said(thanks) and thanks.find("Hangup") is not None
    again = parse(await post(client, "/recording", recording))  # Twilio retried
    assert "留言已收到" in said(again)

    detail = (await client.get(f"/api/v1/voice/calls/{sid}", headers=operator)).json()
    assert detail["recording_url"] == recording["RecordingUrl"] and detail["has_recording"]
    # Operators listen through the API, which fetches the audio with the account's keys.
    twilio.fake.media[f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE1.mp3"] = b"ID3-audio"
    audio = await client.get(f"/api/v1/voice/calls/{sid}/recording", headers=operator)
    assert audio.status_code == 200 and audio.content == b"ID3-audio"
    assert audio.headers["content-type"] == "audio/mpeg"
    assert twilio.fake.fetched[-1].authorization.startswith("Basic ")
    listed = await client.get(f"/api/v1/voice/calls?case_id={detail['case_id']}", headers=operator)
    assert [c["call_sid"] for c in listed.json()["items"]] == [sid]
    assert detail["queue_result"] == "leave" and detail["queue_seconds"] == 60
    case = (await client.get(f"/api/v1/cases/{detail['case_id']}", headers=operator)).json()
    (report,) = case["reports"]
    assert report["id"] == detail["report_id"] and report["channel"] == "voice"
    assert "42秒" in report["description"] and report["in_danger_now"] is True
    assert report["reporter"]["phone"] == caller
    assert case["emergency"] is True
    assert [e["event"] for e in case["timeline"]].count("callback_requested") == 1

    await run_jobs()
    case = (await client.get(f"/api/v1/cases/{detail['case_id']}", headers=operator)).json()
    assert [r["department"] for r in case["referrals"]] == ["police"]

    tasks = (await client.get("/api/v1/voice/callbacks", headers=operator)).json()["items"]
    (task,) = [t for t in tasks if t["call_sid"] == sid]
    assert task["reason"] == "voicemail" and task["priority"] == "red" and task["emergency"]
    assert task["phone"] == caller[3:6] + "****" + caller[-4:]
    assert datetime.fromisoformat(task["due_at"]) == frozen_clock.now() + timedelta(minutes=30)
    opened = (await client.get(f"/api/v1/voice/callbacks/{task['id']}", headers=operator)).json()
    assert opened["phone_to_call"] == caller

    url = f"/api/v1/voice/callbacks/{task['id']}/attempts"
    first = await client.post(url, json={"outcome": "no_answer"}, headers=operator)
    assert first.json()["status"] == "pending" and first.json()["attempts"] == 1
    reached = await client.post(
        url, json={"outcome": "reached", "note": "已联系"}, headers=operator
    )
    assert reached.json()["status"] == "done"
    assert (
        await client.post(url, json={"outcome": "reached"}, headers=operator)
    ).status_code == 409
    pending = (await client.get("/api/v1/voice/callbacks", headers=operator)).json()["items"]
    assert task["id"] not in [t["id"] for t in pending]


async def test_out_of_hours_callers_go_straight_to_voicemail(
    client, twilio, frozen_clock, sessions, make_user, login
):
    frozen_clock.at = CLOSED
    sid, caller = new_sid(), mobile()
    greeting = parse(await post(client, "", call(sid, caller)))
    assert "非接听时间" in said(greeting) and "110" in said(greeting)
    menu = await ring_and_choose(client, sid, caller, None)
    assert menu.find("Enqueue") is None and menu.find("Record") is not None
    await post(
        client,
        "/recording",
        {
            "CallSid": sid,
            "RecordingSid": "RE" + secrets.token_hex(16),
            "RecordingUrl": "https://elsewhere.example/rec/1",
            "RecordingDuration": "15",
        },
    )
    operator = await login(await make_user("operator"))
    detail = (await client.get(f"/api/v1/voice/calls/{sid}", headers=operator)).json()
    assert detail["route"] == "closed" and detail["report_id"] is not None
    # A recording URL off Twilio's API host is never fetched.
    off_host = await client.get(f"/api/v1/voice/calls/{sid}/recording", headers=operator)
    assert off_host.status_code == 404 and twilio.fake.fetched == []
    case = (await client.get(f"/api/v1/cases/{detail['case_id']}", headers=operator)).json()
    assert case["emergency"] is False  # no key 1: a red call-back, not a police emergency
    tasks = (await client.get("/api/v1/voice/callbacks", headers=operator)).json()["items"]
    (task,) = [t for t in tasks if t["call_sid"] == sid]
    assert task["priority"] == "red" and not task["emergency"]

    # A public holiday evening is out of hours although a working day's is not.
    frozen_clock.at = datetime(2026, 10, 1, 18, 0, tzinfo=SHANGHAI)
    holiday = parse(await post(client, "", call(new_sid(), mobile())))
    assert "非接听时间" in said(holiday)
    frozen_clock.at = datetime(2026, 11, 23, 18, 0, tzinfo=SHANGHAI)
    workday = parse(await post(client, "", call(new_sid(), mobile())))
    assert "非接听时间" not in said(workday)


async def test_a_caller_who_pressed_1_and_hung_up_unheard_is_called_back(
    client, twilio, frozen_clock, sessions
):
    frozen_clock.at = CLOSED
    sid, caller = new_sid(), mobile()
    await ring_and_choose(client, sid, caller, "1")  # told to call 110, offered voicemail
    done = await post(client, "/status", call(sid, caller, "completed", CallDuration="20"))
    assert done.status_code == 204
    async with sessions() as session:
        task = (
            await session.execute(
                select(VoiceCallback).join(VoiceCall).where(VoiceCall.call_sid == sid)
            )
        ).scalar_one()
    assert task.reason == "missed_emergency" and task.priority == "red" and task.case_id is None


async def test_callers_who_give_up_waiting_long_are_called_back(
    client, twilio, frozen_clock, sessions
):
    frozen_clock.at = OPEN
    patient, hasty = new_sid(), new_sid()
    for sid, waited in ((patient, "45"), (hasty, "5")):
        await ring_and_choose(client, sid, mobile(), None)
        exit_ = await post(
            client, "/queue-exit", {"CallSid": sid, "QueueResult": "hangup", "QueueTime": waited}
        )
        assert parse(exit_).find("Record") is None
        await post(client, "/status", call(sid, mobile(), "completed", CallDuration=waited))
    async with sessions() as session:
        reasons = dict(
            (
                await session.execute(
                    select(VoiceCall.call_sid, VoiceCallback.reason)
                    .join(VoiceCallback, VoiceCallback.call_id == VoiceCall.id)
                    .where(VoiceCall.call_sid.in_([patient, hasty]))
                )
            ).all()
        )
    assert reasons == {patient: "abandoned"}


async def test_call_status_callbacks_fill_in_the_call_and_never_go_back(
    client, twilio, frozen_clock, sessions
):
    frozen_clock.at = OPEN
    sid, caller = new_sid(), mobile()
    await post(client, "", call(sid, caller))
    for status in ("ringing", "in-progress"):
        assert (await post(client, "/status", call(sid, caller, status))).status_code == 204
    assert (await stored_call(sessions, sid)).status == "in-progress"
    frozen_clock.advance(seconds=95)
    await post(client, "/status", call(sid, caller, "completed", CallDuration="95"))
    # Late and repeated callbacks.
    await post(client, "/status", call(sid, caller, "in-progress"))
    await post(client, "/status", call(sid, caller, "completed", CallDuration="3"))
    stored = await stored_call(sessions, sid)
    assert stored.status == "completed" and stored.duration_seconds == 95
    assert stored.ended_at == frozen_clock.now()
    forged = await signed(
        client, VOICE + "/status", call(sid, caller, "failed"), token="not-the-token"
    )
    assert forged.status_code == 403


async def test_unsigned_voice_webhooks_are_refused_and_create_nothing(client, twilio, sessions):
    sid = new_sid()
    for step in (
        "",
        "/menu",
        "/wait",
        "/queue-exit",
        "/recording",
        "/status",
        "/dequeue",
        "/connect",
    ):
        params = call(sid, mobile(), QueueResult="leave", RecordingDuration="5")
        assert (await client.post(VOICE + step, data=params)).status_code == 403, step
        wrong = await signed(client, VOICE + step, params, sign_url="http://testserver" + VOICE)
        assert wrong.status_code == 403, step
    async with sessions() as session:
        found = await session.scalar(select(func.count()).where(VoiceCall.call_sid == sid))
    assert found == 0


async def test_a_blocked_caller_hears_a_short_message_until_the_block_ends(
    client, twilio, frozen_clock, make_user, login
):
    frozen_clock.at = OPEN
    supervisor = await login(await make_user("supervisor"))
    operator = await login(await make_user("operator"))
    caller = mobile()
    first = new_sid()
    await post(client, "", call(first, caller))

    body = {"call_sid": first, "hours": 2, "reason": "反复骚扰接线员"}
    assert (
        await client.post("/api/v1/voice/blocks", json=body, headers=operator)
    ).status_code == 403
    too_long = await client.post(
        "/api/v1/voice/blocks", json={**body, "hours": 24 * 31}, headers=supervisor
    )
    assert too_long.status_code == 422 and too_long.json()["error"]["code"] == "block_too_long"
    neither = await client.post(
        "/api/v1/voice/blocks", json={"hours": 2, "reason": "x"}, headers=supervisor
    )
    assert neither.status_code == 422
    made = await client.post("/api/v1/voice/blocks", json=body, headers=supervisor)
    assert made.status_code == 201
    block = made.json()
    assert block["active"] and block["phone"] == caller[3:6] + "****" + caller[-4:]

    blocked_sid = new_sid()
    blocked = parse(await post(client, "", call(blocked_sid, caller)))
    assert "暂时无法接入" in said(blocked) and "110" in said(blocked)
    assert blocked.find("Hangup") is not None and blocked.find("Gather") is None
    menu = parse(await post(client, "/menu", call(blocked_sid, caller, Digits="1")))
    assert menu.find("Enqueue") is None

    frozen_clock.advance(hours=2, seconds=1)  # the block has run out
    assert parse(await post(client, "", call(new_sid(), caller))).find("Gather") is not None

    again = await client.post(
        "/api/v1/voice/blocks",
        json={"phone": caller[3:], "hours": 1, "reason": "再次骚扰"},
        headers=supervisor,
    )
    assert parse(await post(client, "", call(new_sid(), caller))).find("Gather") is None
    active = (await client.get("/api/v1/voice/blocks", headers=supervisor)).json()["items"]
    assert again.json()["id"] in [b["id"] for b in active]
    lifted = await client.delete(f"/api/v1/voice/blocks/{again.json()['id']}", headers=supervisor)
    assert lifted.json()["active"] is False
    assert parse(await post(client, "", call(new_sid(), caller))).find("Gather") is not None


async def test_an_operator_registers_a_report_during_the_call_and_sees_the_callers_history(
    client, twilio, frozen_clock, make_user, login
):
    frozen_clock.at = OPEN
    operator = await login(await make_user("operator"))
    caller = mobile()
    # The same number texted the hotline before.
    await signed(
        client,
        "/channels/twilio/sms",
        {
            "MessageSid": "SM" + secrets.token_hex(16),
            "From": caller,
            "To": FROM_NUMBER,
            "Body": "楼下有个孩子一直在乞讨",
        },
    )
    sid = new_sid()
    await ring_and_choose(client, sid, caller, None)
    await post(client, "/connect", {"CallSid": sid, "QueueTime": "8"})

    body = {
        "description": "来电称邻居家孩子身上有淤青，父亲经常打孩子。",
        "categories": ["domestic_violence"],
        "child": {"age": 8, "gender": "male"},
        "jurisdiction": "990102001001",
    }
    url = f"/api/v1/voice/calls/{sid}/report"
    made = await client.post(url, json=body, headers=operator)
    assert made.status_code == 201 and made.json()["duplicate"] is False
    twice = await client.post(url, json=body, headers=operator)
    assert twice.json()["report_id"] == made.json()["report_id"] and twice.json()["duplicate"]

    detail = (await client.get(f"/api/v1/voice/calls/{sid}", headers=operator)).json()
    assert detail["report_id"] == made.json()["report_id"]
    case = (await client.get(f"/api/v1/cases/{made.json()['case_id']}", headers=operator)).json()
    assert case["reports"][0]["reporter"]["phone"] == caller
    assert "call_linked" in [e["event"] for e in case["timeline"]]

    profile = (await client.get(f"/api/v1/voice/calls/{sid}/caller", headers=operator)).json()
    assert profile["phone"] == caller[3:6] + "****" + caller[-4:]
    assert profile["calls"] == 1 and profile["sms_threads"] == 1
    assert sorted(r["channel"] for r in profile["reports"]) == ["sms", "voice"]
    sms_case = next(r["case_id"] for r in profile["reports"] if r["channel"] == "sms")

    # The next call from the number is about the earlier case: linked to it.
    second = new_sid()
    await ring_and_choose(client, second, caller, None)
    linked = await client.post(
        f"/api/v1/voice/calls/{second}/link", json={"case_id": sms_case}, headers=operator
    )
    assert linked.json()["case_id"] == sms_case
    profile = (await client.get(f"/api/v1/voice/calls/{second}/caller", headers=operator)).json()
    assert profile["calls"] == 2

    liaison = await login(await make_user("liaison", "police", "990102"))
    assert (await client.get(f"/api/v1/voice/calls/{sid}", headers=liaison)).status_code == 403
    # A district operator sees the call linked to a case in the district, not unlinked ones.
    district = await login(await make_user("operator", jurisdiction="990102"))
    assert (await client.get(f"/api/v1/voice/calls/{sid}", headers=district)).status_code == 200
    third = new_sid()
    await post(client, "", call(third, mobile()))
    assert (await client.get(f"/api/v1/voice/calls/{third}", headers=district)).status_code == 404
