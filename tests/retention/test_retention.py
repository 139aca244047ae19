"""Retention (issue 14): periods per kind, the job that anonymises or deletes, its dry run,
the legal hold that keeps a case out of it, recordings deleted at Twilio, outbox pruning.

The data is made through intake and aged by moving its timestamps back; the job runs at the
real time, so other tests' fresh rows are never past a period."""

import asyncio
import os
import secrets
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select

from db.engine import transaction
from db.models import AuditLog, Case, CaseEvent, Outbox, Report
from db.models_children import Child, Guardian
from db.telephony import SmsMessage, SmsThread, VoiceCall
from dispatch.retention.job import run_daily, run_retention
from tests.retention.cases import NOW, case, child, closed
from workflows.retention import MARK, Periods, periods, run_day

pytest_plugins = ["tests.fixtures.twilio", "tests.fixtures.console"]

POLICY = Periods()  # the shipped defaults: a year; 5 years after 18; 10 without an age


async def _report(sessions, case_id: int) -> Report:
    async with sessions() as session:
        return (await session.execute(select(Report).where(Report.case_id == case_id))).scalar_one()


async def _anonymised(sessions, case_id: int) -> bool:
    async with sessions() as session:
        return (await session.get(Case, case_id)).anonymised_at is not None


async def _events(sessions, case_id: int) -> list[str]:
    async with sessions() as session:
        return list((await session.execute(
            select(CaseEvent.event).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
        )).scalars())


async def test_a_non_case_past_a_year_is_anonymised_and_a_newer_one_is_not(sessions, settings):
    old = await case(sessions, "invalid", timedelta(days=400))
    unregistered = await case(sessions, "discovered", timedelta(days=400), not_a_case="noise")
    new = await case(sessions, "invalid", timedelta(days=200))
    open_case = await case(sessions, "assessing", timedelta(days=400))

    outcome = await run_retention(sessions, settings, NOW, policy=POLICY)
    assert outcome.counts["non_case"] >= 2

    report = await _report(sessions, old)
    assert report.description == MARK
    assert (report.reporter, report.reporter_phone, report.address, report.raw) == (None,) * 4
    assert report.child == {"age": 7, "gender": "female"}  # sealed again, name gone
    assert report.name_index == []  # no search by the name it had
    assert report.match_keys == [] and report.fingerprint is None
    assert report.categories == ["guardianship_absent"]  # statistics keep their facts
    assert report.jurisdiction_code == "990103001001"
    assert "evidence" not in (report.judgement or {})
    assert await _anonymised(sessions, unregistered)
    assert (await _events(sessions, old))[-1] == "anonymised"
    for kept in (new, open_case):
        assert not await _anonymised(sessions, kept)
        assert (await _report(sessions, kept)).description.startswith("孩子长期")

    async with sessions() as session:
        audits = (await session.execute(
            select(AuditLog.detail).where(AuditLog.action == "retention.anonymise")
        )).scalars().all()
    assert sum(old in d["cases"] for d in audits) == 1
    assert "周老师" not in str(audits) and "13800138011" not in str(audits)

    again = await run_retention(sessions, settings, NOW, policy=POLICY)
    assert again.counts["non_case"] == 0  # idempotent: nothing is done twice
    assert (await _events(sessions, old)).count("anonymised") == 1


async def test_a_closed_case_is_kept_until_n_years_after_the_child_turns_18_unless_held(
    sessions, settings, client, make_user, login, console_client
):
    grown = await closed(sessions, years=7)
    grown_child = await child(sessions, grown, date(2000, 6, 15))  # 18 in 2018, +5 long past
    young = await closed(sessions, years=7)
    await child(sessions, young, date(NOW.year - 15, 1, 1))  # turns 18 in three years
    held = await closed(sessions, years=7)
    held_child = await child(sessions, held, date(2000, 1, 1))
    no_age_old = await case(sessions, "closed", timedelta(days=12 * 365),
                             closed_ago=timedelta(days=11 * 365))
    no_age_recent = await case(sessions, "closed", timedelta(days=8 * 365),
                                closed_ago=timedelta(days=7 * 365))
    supervisor = await login(await make_user("supervisor"))
    placed = await client.put(f"/api/v1/cases/{held}/legal-hold", headers=supervisor,
                              json={"reason": "当事人已起诉，法院调取案卷"})
    assert placed.status_code == 200, placed.text

    dry = await run_retention(sessions, settings, NOW, dry_run=True, policy=POLICY)
    assert dry.counts["closed_case"] >= 2
    await run_retention(sessions, settings, NOW, policy=POLICY)

    assert await _anonymised(sessions, grown) and await _anonymised(sessions, no_age_old)
    for kept in (young, held, no_age_recent):
        assert not await _anonymised(sessions, kept), kept
    async with sessions() as session:
        file = await session.get(Child, grown_child)
        assert (file.name, file.id_number, file.id_index, file.address, file.school) == (
            None, None, None, None, None)
        assert file.birth_date == date(2000, 1, 1) and file.gender == "female"  # the year
        assert file.name_index == [] and file.match_keys == []
        guardian = (await session.execute(
            select(Guardian).where(Guardian.child_id == grown_child))).scalar_one()
        assert (guardian.name, guardian.phone) == (None, None)
        kept_child = await session.get(Child, held_child)
        assert kept_child.name == "赵小红" and kept_child.id_number == "110101200001011234"
        reasons = (await session.execute(select(CaseEvent.reason).where(
            CaseEvent.case_id == grown, CaseEvent.event == "close"))).scalars().all()
        assert reasons == [MARK]

    # The anonymised case still opens, everywhere, with the facts and without the person.
    shown = await client.get(f"/api/v1/cases/{grown}", headers=supervisor)
    assert shown.status_code == 200, shown.text
    assert MARK in shown.text and "周老师" not in shown.text and "东湖路" not in shown.text
    file = await client.get(f"/api/v1/children/{grown_child}", headers=supervisor)
    assert file.status_code == 200, file.text
    assert "赵小红" not in file.text and "110101200001011234" not in file.text
    page = await (await console_client(await make_user("supervisor"))).get(
        f"/console/cases/{grown}")
    assert page.status_code == 200
    assert "已按保存期限匿名化" in page.text and "东湖路" not in page.text

    lifted = await client.request("DELETE", f"/api/v1/cases/{held}/legal-hold",
                                  headers=supervisor, json={"reason": "诉讼已结束"})
    assert lifted.status_code == 200 and lifted.json()["held"] is False
    await run_retention(sessions, settings, NOW, policy=POLICY)
    assert await _anonymised(sessions, held)
    assert (await _events(sessions, held))[-3:] == [
        "legal_hold_placed", "legal_hold_lifted", "anonymised"]
    again = await client.put(f"/api/v1/cases/{held}/legal-hold", headers=supervisor,
                             json={"reason": "再次调取"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "case_anonymised"


async def _snapshot(sessions) -> tuple:
    async with sessions() as session:
        return (
            await session.scalar(select(func.count()).select_from(AuditLog)),
            await session.scalar(select(func.count()).select_from(CaseEvent)),
            await session.scalar(select(func.count()).select_from(Outbox)),
            await session.scalar(select(func.count()).where(Case.anonymised_at.is_not(None))),
            await session.scalar(select(func.count()).where(Report.description == MARK)),
        )


async def test_the_dry_run_counts_and_writes_nothing(sessions, settings, database_url, caplog):
    due = await case(sessions, "invalid", timedelta(days=500))
    before = await _snapshot(sessions)
    with caplog.at_level("INFO", logger="hotline.retention"):
        outcome = await run_retention(sessions, settings, NOW, dry_run=True, policy=POLICY)
    assert outcome.dry_run and outcome.counts["non_case"] >= 1
    logged = " ".join(r.getMessage() for r in caplog.records if r.name == "hotline.retention")
    assert "non_case=" in logged and "周老师" not in logged and "13800138011" not in logged
    printed = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "dispatch.ops.cli", "retention", "--dry-run"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "DATABASE_URL": database_url},
    )
    assert printed.returncode == 0, printed.stderr
    assert "预览（未写入任何数据）" in printed.stdout and "不成立的报告" in printed.stdout
    assert "周老师" not in printed.stdout + printed.stderr
    assert await _snapshot(sessions) == before
    assert not await _anonymised(sessions, due)


async def _call(sessions, case_id: int | None, ago: timedelta) -> VoiceCall:
    sid = "RE" + secrets.token_hex(16)
    call = VoiceCall(call_sid="CA" + secrets.token_hex(16), phone="+8613700137000",
                     status="completed", route="closed", recording_sid=sid,
                     recording_url=f"https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/{sid}",
                     recording_seconds=42, case_id=case_id,
                     created_at=NOW - ago, updated_at=NOW - ago)
    async with transaction(sessions) as session:
        session.add(call)
    return call


async def test_a_voicemail_recording_is_deleted_at_twilio_and_the_record_kept(
    sessions, twilio, client, make_user, login
):
    old = await _call(sessions, None, timedelta(days=200))
    recent = await _call(sessions, None, timedelta(days=20))
    held_case = await case(sessions, "closed", timedelta(days=300), closed_ago=timedelta(days=250))
    held = await _call(sessions, held_case, timedelta(days=250))
    supervisor = await login(await make_user("supervisor"))
    placed = await client.put(f"/api/v1/cases/{held_case}/legal-hold", headers=supervisor,
                              json={"reason": "公安机关调查中"})
    assert placed.status_code == 200

    outcome = await run_retention(sessions, twilio.settings, NOW, policy=POLICY)
    assert outcome.counts["recording"] >= 1 and not outcome.failed
    paths = [d.path for d in twilio.fake.deleted]
    assert any(p.endswith(f"/Recordings/{old.recording_sid}.json") for p in paths)
    assert not any(recent.recording_sid in p or held.recording_sid in p for p in paths)
    assert all(d.authorization for d in twilio.fake.deleted)
    async with sessions() as session:
        row = await session.get(VoiceCall, old.id)
        assert row.recording_deleted_at is not None and row.recording_url is None
        assert row.recording_sid == old.recording_sid and row.recording_seconds == 42
        assert (await session.get(VoiceCall, held.id)).recording_deleted_at is None

    count = len(twilio.fake.deleted)
    await run_retention(sessions, twilio.settings, NOW, policy=POLICY)
    assert len(twilio.fake.deleted) == count  # done once, not asked again


async def test_a_recording_twilio_no_longer_has_counts_as_deleted(sessions, twilio):
    call = await _call(sessions, None, timedelta(days=300))
    account = twilio.settings.twilio_account_sid
    path = f"/2010-04-01/Accounts/{account}/Recordings/{call.recording_sid}.json"
    twilio.fake.gone.add(path)  # deleted at Twilio by an earlier run that then stopped
    outcome = await run_retention(sessions, twilio.settings, NOW, policy=POLICY)
    assert not outcome.failed
    async with sessions() as session:
        assert (await session.get(VoiceCall, call.id)).recording_deleted_at is not None


async def test_a_recording_twilio_fails_to_delete_is_kept_and_tried_again(sessions, twilio):
    call = await _call(sessions, None, timedelta(days=300))
    twilio.fake.script = [(500, {"code": 20500, "message": "Internal Server Error"})]
    failed = await run_retention(sessions, twilio.settings, NOW, policy=POLICY)
    assert failed.failed == {"recording": 1}
    async with sessions() as session:
        row = await session.get(VoiceCall, call.id)
        assert row.recording_deleted_at is None and row.recording_url is not None
    retried = await run_retention(sessions, twilio.settings, NOW, policy=POLICY)
    assert not retried.failed and retried.counts["recording"] >= 1
    async with sessions() as session:
        assert (await session.get(VoiceCall, call.id)).recording_deleted_at is not None


async def test_done_outbox_rows_are_deleted_after_their_period(sessions, settings):
    async with transaction(sessions) as session:
        rows = [Outbox(topic="test.retention", payload={}, done_at=NOW - timedelta(days=10)),
                Outbox(topic="test.retention", payload={}, done_at=NOW - timedelta(hours=1)),
                Outbox(topic="test.retention", payload={}, created_at=NOW - timedelta(days=10),
                       available_at=NOW + timedelta(days=365))]
        session.add_all(rows)
    ids = [r.id for r in rows]
    try:
        outcome = await run_retention(sessions, settings, NOW, policy=POLICY)
        assert outcome.counts["outbox"] >= 1
        async with sessions() as session:
            left = set((await session.execute(
                select(Outbox.id).where(Outbox.id.in_(ids)))).scalars())
        assert left == {rows[1].id, rows[2].id}  # recent, and not done: kept
    finally:  # the pending row would count in other tests' outbox figures
        async with transaction(sessions) as session:
            await session.execute(delete(Outbox).where(Outbox.id.in_(ids)))


async def test_the_daily_run_is_claimed_once_a_day(sessions, settings, redis_client):
    policy = Periods(hour=0)
    day = run_day(NOW, policy, "Asia/Shanghai")
    redis_client.delete(f"hotline:retention:{day.isoformat()}")
    first = await run_daily(sessions, redis_client, settings, NOW, "a", policy=policy)
    second = await run_daily(sessions, redis_client, settings, NOW, "b", policy=policy)
    assert first is not None and not first.dry_run and second is None
    late = Periods(hour=23)
    before_hour = datetime(2026, 3, 1, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai
    assert run_day(before_hour, late, "Asia/Shanghai") is None


def test_a_period_that_is_not_a_positive_number_is_refused(tmp_path, monkeypatch):
    from workflows.config import ConfigError, load

    (tmp_path / "retention.toml").write_text("[retention]\nnon_case_days = 0\n")
    monkeypatch.setenv("HOTLINE_CONFIG_DIR", str(tmp_path))
    load.cache_clear()
    try:
        with pytest.raises(ConfigError, match="non_case_days"):
            periods()
    finally:
        monkeypatch.delenv("HOTLINE_CONFIG_DIR")
        load.cache_clear()


async def test_old_sms_bodies_of_an_ended_case_are_blanked(sessions, settings):
    ended = await case(sessions, "closed", timedelta(days=3 * 365),
                       closed_ago=timedelta(days=2 * 365))  # closed, kept (no age: 10 years)
    still_open = await case(sessions, "handling", timedelta(days=3 * 365))
    messages = {}
    async with transaction(sessions) as session:
        for case_id in (ended, still_open):
            report = (await session.execute(
                select(Report).where(Report.case_id == case_id))).scalar_one()
            thread = SmsThread(phone="+8613600136000", report_id=report.id, case_id=case_id)
            session.add(thread)
            await session.flush()
            for days in (400, 30):
                message = SmsMessage(
                    thread_id=thread.id, direction="in", kind="followup", phone=thread.phone,
                    body=f"孩子又被打了 {secrets.token_hex(3)}", status="received",
                    created_at=NOW - timedelta(days=days), updated_at=NOW - timedelta(days=days))
                session.add(message)
                await session.flush()
                messages[(case_id, days)] = message.id

    outcome = await run_retention(sessions, settings, NOW, policy=POLICY)
    assert outcome.counts["sms_body"] >= 1
    async with sessions() as session:
        bodies = {key: (await session.get(SmsMessage, mid)).body for key, mid in messages.items()}
    assert bodies[(ended, 400)] == ""  # cleared (a sealed body is emptied, not marked)
    assert bodies[(ended, 30)] != ""  # within the period
    assert "" not in (bodies[(still_open, 400)], bodies[(still_open, 30)])  # the case is open
    assert not await _anonymised(sessions, ended)  # only the bodies went
