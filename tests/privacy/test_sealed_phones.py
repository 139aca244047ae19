"""Phone numbers are ciphertext at rest: a dump shows a reporter's or caller's number in no
table, while the service still finds them by number (threading, STOP, blocks, the caller
profile, through a key rotation), and migration 0031 converts what was stored plain."""

import asyncio
import functools
import hashlib
import secrets

import asyncpg
from sqlalchemy import func, select

from db import crypto
from db.telephony import SmsThread
from tests.fixtures import raw_sql
from tests.fixtures.keys import run_cli
from tests.fixtures.reports import report
from tests.fixtures.twilio_fake import mobile, parse, signed, sms
from tests.fixtures.voice import CLOSED, call, new_sid, post, ring_and_choose
from workflows.cases import intake

pytest_plugins = ("tests.fixtures.console", "tests.fixtures.keys", "tests.fixtures.twilio")

SMS = "/channels/twilio/sms"


async def test_no_table_shows_the_number_of_a_reporter_texter_and_caller(
    client, twilio, frozen_clock, pump, make_user, login, database_url
):
    frozen_clock.at = CLOSED
    number = mobile()
    national = number[3:]
    made = await client.post("/api/v1/reports", json=report(
        reporter={"name": "李老师", "role": "teacher", "phone": national}))
    assert made.status_code == 201, made.text
    for words in ("我在学校附近", "我爸又打我了", "退订"):
        assert (await signed(client, SMS, sms(number, words))).status_code == 200
    first = new_sid()
    await ring_and_choose(client, first, number, "1")  # out of hours: a call-back is owed
    await post(client, "/status", call(first, number, "completed", CallDuration="20"))
    supervisor = await login(await make_user("supervisor"))
    block = await client.post("/api/v1/voice/blocks", headers=supervisor,
                              json={"call_sid": first, "hours": 2, "reason": "反复骚扰接线员"})
    assert block.status_code == 201, block.text
    await pump()  # matching's keys, the replies

    assert await raw_sql.columns_holding(database_url, national) == []

    # And the service still knows the number: the block holds, the profile counts both calls
    # and finds the texts and the report, the case shows the reporter's number in full.
    blocked = new_sid()
    assert parse(await post(client, "", call(blocked, number))).find("Gather") is None
    operator = await login(await make_user("operator"))
    profile = (await client.get(f"/api/v1/voice/calls/{blocked}/caller", headers=operator)).json()
    assert (profile["calls"], profile["sms_threads"], profile["opted_out_of_sms"]) == (2, 1, True)
    assert sorted(r["channel"] for r in profile["reports"]) == ["sms", "webform"]
    case = (await client.get(f"/api/v1/cases/{made.json()['case_id']}", headers=operator)).json()
    assert case["reports"][0]["reporter"]["phone"] == number


async def test_the_submission_fingerprint_cannot_be_recomputed_from_a_guessed_number(
    client, database_url, monkeypatch
):
    body = report(reporter={"name": "李老师", "role": "teacher", "phone": mobile()[3:]})
    made = await client.post("/api/v1/reports", json=body)
    assert made.status_code == 201, made.text
    stored = await raw_sql.fetchval(
        database_url, "SELECT fingerprint FROM report WHERE id = $1", made.json()["report_id"])
    # Whoever holds a dump knows the rest of the report; an unkeyed hash of it with each
    # candidate number would find the reporter's.
    monkeypatch.setattr(intake, "keyed_hash", lambda data: hashlib.sha256(data).hexdigest(),
                        raising=False)
    guessed = intake.fingerprint(intake.from_report_in(intake.ReportIn.model_validate(body)))
    assert stored != guessed


async def test_texts_thread_and_stop_holds_through_a_key_rotation(
    client, twilio, sessions, settings, ring_with, monkeypatch, database_url
):
    number = mobile()
    opened = parse(await signed(client, SMS, sms(number, "我在学校附近 有人跟着我")))
    old = settings.hotline_data_key
    new = crypto.new_key_entry()
    ring_with(f"{new},{old}")
    try:
        done = await run_cli(monkeypatch, database_url, "keys", "rotate", "--reencrypt-only")
        assert done.exit_code == 0, done.output
        assert "sms_thread.phone" in done.output and "sms_opt_out.phone" in done.output
        later = parse(await signed(client, SMS, sms(number, "他还在 我好害怕")))
        code = opened.findtext("Message").split("编号")[1][:9]
        assert code in later.findtext("Message")  # the same report's thread
        async with sessions() as session:
            threads = await session.scalar(select(func.count()).select_from(SmsThread).where(
                SmsThread.phone_index == crypto.phone_index(number)))
            stored = await session.scalar(select(func.min(SmsThread.phone)).where(
                SmsThread.phone_index == crypto.phone_index(number)))
        assert threads == 1 and stored == number
        assert parse(await signed(client, SMS, sms(number, "STOP"))).find("Message") is not None
        again = await run_cli(monkeypatch, database_url, "keys", "rotate", "--reencrypt-only")
        assert again.exit_code == 0, again.output
        quiet = parse(await signed(client, SMS, sms(number, "还在吗")))
        assert quiet.find("Message") is None  # opted out: a follow-up is stored, not answered
    finally:
        ring_with(f"{old},{new}")  # the run's key newest again, for the tests after this one
        await run_cli(monkeypatch, database_url, "keys", "rotate", "--reencrypt-only")


def test_the_migration_seals_every_plain_number_and_the_downgrade_opens_them(fresh_database):
    from dispatch.ops import schema

    url = fresh_database()
    schema.upgrade(url, "0030")
    phone = "+86139" + "".join(secrets.choice("0123456789") for _ in range(8))
    index = crypto.phone_index(phone)

    run = functools.partial(raw_sql.fetchval, url)

    def one(sql: str, *args):
        return asyncio.run(run(sql, *args))

    user = one("INSERT INTO app_user (username, password_hash, role, phone, active,"
               " token_version) VALUES ('u1', 'x', 'supervisor', $1, true, 0) RETURNING id", phone)
    case_id = one("INSERT INTO hcase (state, emergency, mandatory) VALUES ('discovered', false,"
                  " false) RETURNING id")
    report_id = one(
        "INSERT INTO report (channel, external_id, receipt_code, case_id, description,"
        " in_danger_now, reporter_phone, match_keys) VALUES ('sms', 'SM1', 'R1', $1, 'x', false,"
        " $2, $3) RETURNING id", case_id, phone, ["f:wang~ming", "p:" + phone])
    thread = one("INSERT INTO sms_thread (phone, report_id, case_id) VALUES ($1, $2, $3)"
                 " RETURNING id", phone, report_id, case_id)
    one("INSERT INTO sms_message (thread_id, direction, kind, phone, body, status, attempts)"
        " VALUES ($1, 'in', 'report', $2, '', 'received', 0)", thread, phone)
    one("INSERT INTO sms_opt_out (phone, keyword) VALUES ($1, 'STOP')", phone)
    call_id = one("INSERT INTO voice_call (call_sid, phone, status, route) VALUES ('CA1', $1,"
                  " 'completed', 'open') RETURNING id", phone)
    one("INSERT INTO voice_callback (call_id, phone, reason, priority, emergency, status,"
        " attempts) VALUES ($1, $2, 'voicemail', 'orange', false, 'pending', 0)", call_id, phone)
    one("INSERT INTO caller_block (phone, reason, created_by) VALUES ($1, '骚扰', $2)",
        phone, user)
    child = one("INSERT INTO child (name, match_keys) VALUES ('王小明', $1) RETURNING id",
                ["p:" + phone])
    one("INSERT INTO guardian (child_id, relation, phone, phone_index, state) VALUES ($1,"
        " '母亲', $2, $3, 'present')", child, crypto.encrypt(phone), index)

    schema.upgrade(url, "0031")  # this migration; 0032 then hashes every key (names)
    assert asyncio.run(raw_sql.columns_holding(url, phone[3:])) == []
    for table, column in (("report", "reporter_phone"), ("sms_thread", "phone"),
                          ("sms_message", "phone"), ("sms_opt_out", "phone"),
                          ("voice_call", "phone"), ("voice_callback", "phone"),
                          ("caller_block", "phone")):
        sealed, found = asyncio.run(_row(url, f"SELECT {column}, phone_index FROM {table}"))
        assert crypto.decrypt(sealed) == phone and found == index, table
    assert crypto.decrypt(one("SELECT phone FROM app_user")) == phone
    assert one("SELECT match_keys FROM report") == ["f:wang~ming", "p:" + index]
    assert one("SELECT match_keys FROM child") == ["p:" + index]

    schema.downgrade(url, "0030")
    for table in ("sms_thread", "sms_message", "sms_opt_out", "voice_call", "voice_callback",
                  "caller_block", "app_user"):
        assert one(f"SELECT phone FROM {table}") == phone, table
    assert one("SELECT reporter_phone FROM report") == phone
    assert one("SELECT match_keys FROM report") == ["f:wang~ming", "p:" + phone]
    assert one("SELECT match_keys FROM child") == ["p:" + phone]


async def _row(url: str, sql: str) -> tuple:
    conn = await asyncpg.connect(url)
    try:
        return tuple(await conn.fetchrow(sql))
    finally:
        await conn.close()
