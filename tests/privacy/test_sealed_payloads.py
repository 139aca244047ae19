"""A partner's order and a voicemail link are ciphertext at rest, and `hotline keys rotate`
moves every sealed field to the newest key while the old one still reads."""

import asyncio
import functools
import secrets

from sqlalchemy import select

from db import crypto
from db.models import Case, Report
from db.telephony import SmsMessage, VoiceCall
from tests.fixtures import raw_sql
from tests.fixtures.keys import run_cli as _cli
from tests.fixtures.partners import order
from tests.fixtures.twilio_fake import mobile, signed, sms

pytest_plugins = ("tests.fixtures.keys", "tests.fixtures.partners", "tests.fixtures.twilio")


async def _a_forward_and_a_voicemail(post_forward, sessions, pump) -> tuple[int, str, str]:
    name = "张" + secrets.choice("秀丽华芳敏静") + secrets.choice("英兰梅娟")
    work_order = order(caller_name=name)
    answer = await post_forward("12345", work_order)
    assert answer.status_code == 202, answer.text
    await pump()
    async with sessions() as session:
        report_id = await session.scalar(select(Report.id).where(
            Report.channel == "12345", Report.external_id == work_order["external_id"]))
    sid = "CA" + secrets.token_hex(16)
    async with sessions() as session, session.begin():
        session.add(VoiceCall(
            call_sid=sid, phone="+8613900139000", status="completed", route="open",
            recording_url=f"https://api.twilio.com/recordings/RE{sid}"))
    return report_id, name, sid


async def test_a_partner_order_and_a_voicemail_link_are_unreadable_in_the_database(
    post_forward, sessions, pump, database_url
):
    report_id, name, sid = await _a_forward_and_a_voicemail(post_forward, sessions, pump)
    stored = functools.partial(raw_sql.fetchval, database_url)
    raw = await stored("SELECT raw FROM report WHERE id = $1", report_id)
    who = await stored("SELECT reporter FROM report WHERE id = $1", report_id)
    link = await stored("SELECT recording_url FROM voice_call WHERE call_sid = $1", sid)
    for plain in (name, "13800138000", "幸福里", sid):
        assert plain not in raw and plain not in link and plain not in who
    async with sessions() as session:  # and the service reads them as they came
        stored = await session.get(Report, report_id)
        assert stored.raw["caller_name"] == name and stored.reporter["name"] == name
        call = await session.scalar(select(VoiceCall).where(VoiceCall.call_sid == sid))
        assert call.recording_url.endswith(sid)


async def test_a_text_thread_is_unreadable_in_the_database_and_judged_whole(
    client, twilio, sessions, database_url
):
    sender = mobile()
    for words in ("我在学校附近", "我爸喝了酒正在打我妈妈和我 快来"):
        assert (await signed(client, "/channels/twilio/sms", sms(sender, words))).status_code == 200
    stored = await raw_sql.fetch(
        database_url, "SELECT body FROM sms_message WHERE phone_index = $1",
        crypto.phone_index(sender))
    assert len(stored) == 2 and not any("打我" in r["body"] or "学校" in r["body"] for r in stored)
    async with sessions() as session:
        bodies = (await session.execute(select(SmsMessage.body).where(
            SmsMessage.phone_index == crypto.phone_index(sender)
        ).order_by(SmsMessage.id))).scalars().all()
        case_id = await session.scalar(select(Report.case_id).where(
            Report.phone_index == crypto.phone_index(sender)))
        case = await session.get(Case, case_id)
    assert bodies == ["我在学校附近", "我爸喝了酒正在打我妈妈和我 快来"]
    assert case.emergency  # the second message, read through the ciphertext, raised the case


async def test_rotation_reencrypts_every_sealed_field_and_a_rerun_has_nothing_left(
    post_forward, sessions, pump, database_url, settings, ring_with, monkeypatch
):
    report_id, name, sid = await _a_forward_and_a_voicemail(post_forward, sessions, pump)
    old = settings.hotline_data_key
    refused = await _cli(monkeypatch, database_url, "keys", "rotate")
    assert refused.exit_code == 2 and "HOTLINE_DATA_KEY" in refused.output  # env ring: say how

    new = crypto.new_key_entry()
    ring_with(f"{new},{old}")
    new_id = crypto.ring().current
    try:
        done = await _cli(monkeypatch, database_url, "keys", "rotate", "--reencrypt-only")
        assert done.exit_code == 0, done.output
        assert f"全部密文已使用密钥 {new_id}" in done.output
        for line in ("report.raw", "voice_call.recording_url", "guardian.phone"):
            assert line in done.output
        raw = await raw_sql.fetchval(
            database_url, "SELECT raw FROM report WHERE id = $1", report_id)
        assert raw.startswith(new_id + ":")
        again = await _cli(monkeypatch, database_url, "keys", "rotate", "--reencrypt-only")
        assert "共 0 条改写" in again.output
        ring_with(new)  # the old key gone: everything still reads
        async with sessions() as session:
            assert (await session.get(Report, report_id)).raw["caller_name"] == name
    finally:
        ring_with(f"{old},{new}")  # the run's key newest again, for the tests after this one
        back = await _cli(monkeypatch, database_url, "keys", "rotate", "--reencrypt-only")
        assert back.exit_code == 0, back.output


def test_the_migration_seals_what_was_stored_plain_and_the_downgrade_opens_it(fresh_database):
    from dispatch.ops import schema

    url = fresh_database()
    schema.upgrade(url, "0026")

    run = functools.partial(raw_sql.fetchval, url)

    case_id = asyncio.run(raw_sql.bare_case(url))
    asyncio.run(run(
        "INSERT INTO report (channel, external_id, receipt_code, case_id, description,"
        " in_danger_now, raw, reporter) VALUES ('12345', 'WO-1', 'R1', $1, 'x', false,"
        " '{\"caller_name\": \"张秀英\"}'::jsonb, '{\"name\": \"张秀英\"}'::jsonb)", case_id))
    asyncio.run(run(
        "INSERT INTO voice_call (call_sid, status, route, recording_url)"
        " VALUES ('CA1', 'completed', 'open', 'https://api.twilio.com/RE1')"))
    asyncio.run(run(
        "INSERT INTO sms_message (direction, kind, phone, body, status, attempts)"
        " VALUES ('in', 'report', '+8613900139000', '我爸又打我了 救命', 'received', 0),"
        " ('out', 'reply', '+8613900139000', '', 'sent', 0)"))
    schema.upgrade(url)
    bodies = asyncio.run(run("SELECT string_agg(body, '|' ORDER BY id) FROM sms_message"))
    assert "救命" not in bodies and bodies.endswith("|")  # the empty body stays empty
    assert crypto.decrypt(bodies.split("|")[0]) == "我爸又打我了 救命"
    sealed = asyncio.run(run("SELECT raw FROM report"))
    link = asyncio.run(run("SELECT recording_url FROM voice_call"))
    assert "张秀英" not in sealed and "twilio" not in link
    assert crypto.open_json(sealed) == {"caller_name": "张秀英"}
    who = asyncio.run(run("SELECT reporter FROM report"))
    assert "张秀英" not in who and crypto.open_json(who) == {"name": "张秀英"}
    assert crypto.decrypt(link) == "https://api.twilio.com/RE1"
    schema.downgrade(url, "0026")
    assert asyncio.run(run("SELECT raw->>'caller_name' FROM report")) == "张秀英"
    assert asyncio.run(run("SELECT reporter->>'name' FROM report")) == "张秀英"
    assert asyncio.run(run("SELECT recording_url FROM voice_call")) == "https://api.twilio.com/RE1"
    first = asyncio.run(run("SELECT body FROM sms_message ORDER BY id LIMIT 1"))
    assert first == "我爸又打我了 救命"
