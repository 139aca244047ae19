"""Operators correct what intake made of a case: `PATCH /api/v1/cases/{id}` and the case
page. Routing is planned again (new referrals at the right office, the ones no longer due
withdrawn, their liaison told why), the timeline and the audit log show it, and the
correction is kept as a labelled example that `hotline triage export` writes."""

import asyncio
import json

from sqlalchemy import select
from typer.testing import CliRunner

from db.crypto import phone_index
from db.models import AuditLog, Notification, Office, Referral, Report
from db.triage import TriageExample
from dispatch.ops.cli import app as cli
from tests.fixtures.console import form_token
from tests.fixtures.reports import report
from tests.fixtures.twilio_fake import mobile, signed
from workflows.errors import WorkflowRefused
from workflows.referrals.workflow import STATUS_LABELS, apply_referral_event

pytest_plugins = ("tests.fixtures.console", "tests.fixtures.twilio")


async def _referrals(sessions, case_id: int) -> list[Referral]:
    async with sessions() as session:
        rows = await session.execute(
            select(Referral).where(Referral.case_id == case_id).order_by(Referral.id)
        )
        return list(rows.scalars())


async def _office(sessions, department: str, jurisdiction: str) -> int:
    async with sessions() as session:
        return await session.scalar(
            select(Office.id).where(
                Office.department_code == department, Office.jurisdiction_code == jurisdiction
            )
        )


def _live(referrals: list[Referral]) -> dict[str, Referral]:
    return {r.department_code: r for r in referrals if r.status not in ("withdrawn",)}


async def test_a_correction_that_adds_a_category_and_moves_the_place_replans_the_routing(
    client, sessions, pump, make_user, login, database_url, monkeypatch, tmp_path
):
    police_liaison = await make_user("liaison", "police", "990102001", phone="+8613900000101")
    civil_liaison = await make_user("liaison", "civil_affairs", "990102", phone="+8613900000102")
    operator = await login(await make_user("operator"))
    created = await client.post(
        "/api/v1/reports", json=report(situations=[], jurisdiction="990102001001")
    )
    case_id = created.json()["case_id"]
    await pump()
    before = _live(await _referrals(sessions, case_id))
    assert before["police"].office_id == await _office(sessions, "police", "990102001")
    assert before["civil_affairs"].office_id == await _office(sessions, "civil_affairs", "990102")
    claimed = await client.post(
        f"/api/v1/referrals/{before['police'].id}/claim", headers=await login(police_liaison)
    )
    assert claimed.status_code == 200, claimed.text

    answer = await client.patch(
        f"/api/v1/cases/{case_id}",
        json={
            "categories": ["domestic_violence", "bullying"],
            "jurisdiction": "990103001001",
            "reason": "核实后孩子住在湖滨村，且在学校被同学欺负",
        },
        headers=operator,
    )
    assert answer.status_code == 200, answer.text
    case = answer.json()
    shape = (await client.get(f"/api/v1/cases/{case_id}", headers=operator)).json()
    assert set(case) == set(shape)  # the same shape as GET
    assert case["categories"] == ["domestic_violence", "bullying"]
    assert case["jurisdiction"] == "990103001001"
    await pump()

    after = await _referrals(sessions, case_id)
    live = _live(after)
    # New referrals at the offices of the new place (or the nearest above it).
    assert live["police"].office_id == await _office(sessions, "police", "990103001")
    assert live["civil_affairs"].office_id == await _office(sessions, "civil_affairs", "990103")
    assert live["education"].office_id == await _office(sessions, "education", "990103")
    assert live["women_federation"].office_id == await _office(
        sessions, "women_federation", "990100"
    )
    # Court and procuratorate sit at the city either way: left as they were.
    assert live["court"].id == before["court"].id
    # The old ones are withdrawn with the reason, nothing cancelled.
    old_police = next(r for r in after if r.id == before["police"].id)
    old_civil = next(r for r in after if r.id == before["civil_affairs"].id)
    assert old_police.status == old_civil.status == "withdrawn"
    assert "湖滨村" in old_police.withdraw_reason
    assert all(r.status != "cancelled" for r in after)
    # Their liaisons are told why: the claimant for the claimed one, the office's for the
    # unclaimed one.
    async with sessions() as session:
        told = {
            n.user_id: n.text
            for n in (
                await session.execute(
                    select(Notification).where(
                        Notification.case_id == case_id, Notification.kind == "referral_withdrawn"
                    )
                )
            ).scalars()
        }
        audited = (
            await session.execute(
                select(AuditLog).where(
                    AuditLog.action == "case.correct", AuditLog.object_id == str(case_id)
                )
            )
        ).scalar_one()
    assert police_liaison.id in told and civil_liaison.id in told
    assert "撤回" in told[police_liaison.id] and "湖滨村" in told[police_liaison.id]
    assert set(audited.detail["fields"]) == {"categories", "jurisdiction"}

    timeline = (await client.get(f"/api/v1/cases/{case_id}", headers=operator)).json()["timeline"]
    corrected = [e for e in timeline if e["event"] == "corrected"]
    assert len(corrected) == 1
    assert corrected[0]["data"]["before"]["jurisdiction"] == "990102001001"
    assert corrected[0]["data"]["after"]["categories"] == ["domestic_violence", "bullying"]
    assert corrected[0]["reason"].startswith("核实后")
    assert sum(e["event"] == "referral_withdrawn" for e in timeline) >= 2

    # Kept as a labelled example, and exported in the corpus format.
    async with sessions() as session:
        example = (
            await session.execute(select(TriageExample).where(TriageExample.case_id == case_id))
        ).scalar_one()
        judged = (await session.get(Report, created.json()["report_id"])).judgement
    assert example.corpus_register == "mandatory"
    assert example.labels["categories"] == ["domestic_violence", "bullying"]
    out = tmp_path / "corrections.jsonl"
    monkeypatch.setattr("dispatch.ops.cli._database_url", lambda: database_url)
    # The command runs its own event loop: off this test's loop, in a thread.
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["triage", "export", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    mine = [line for line in lines if line["id"] == f"correction-{example.id}"]
    assert len(mine) == 1
    assert mine[0] | {"text": ""} == {
        "id": f"correction-{example.id}",
        "register": "mandatory",
        "text": "",
        "categories": ["domestic_violence", "bullying"],
        # Danger and situations as the case holds them: the text's judgement raised them.
        "emergency": case["emergency"],
        "situations": sorted(judged["situations"]),
        "jurisdiction": "990103001001",
        "not_a_case": None,
        "tags": ["correction"],
    }
    assert mine[0]["text"].startswith("学生身上多处淤青")
    printed = await asyncio.to_thread(CliRunner().invoke, cli, ["triage", "export", "--all"])
    assert printed.exit_code == 0
    assert f'"id": "correction-{example.id}"' in printed.stdout


async def test_making_a_waiting_sms_case_an_emergency_sends_police_at_once(
    client, sessions, twilio, run_jobs, make_user, login
):
    sender = mobile()
    from tests.fixtures.twilio_fake import sms

    await signed(client, "/channels/twilio/sms", sms(sender, "楼下有个小孩一直在哭"))
    await run_jobs()
    operator = await login(await make_user("operator"))
    cases = (await client.get("/api/v1/cases", headers=operator)).json()["items"]
    async with sessions() as session:
        from db.models import Report

        case_id = (
            await session.execute(
                select(Report.case_id).where(Report.phone_index == phone_index(sender))
            )
        ).scalar_one()
    assert any(c["id"] == case_id for c in cases)
    answer = await client.patch(
        f"/api/v1/cases/{case_id}",
        json={"emergency": True, "child": {"age": 5}, "reason": "回电核实：孩子被反锁在家"},
        headers=operator,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["emergency"] is True and body["state"] == "discovered"
    assert body["reports"][0]["child"] == {"age": 5}
    assert [r["department"] for r in body["referrals"]] == ["police"]
    corrected = next(e for e in body["timeline"] if e["event"] == "corrected")
    assert corrected["data"]["child"] == ["age"]  # names only: the timeline is shown widely
    assert "5" not in json.dumps(corrected["data"]["after"])


async def test_wrong_corrections_are_refused_with_what_is_allowed(
    client, new_case, make_user, login
):
    case_id = await new_case()
    operator = await login(await make_user("operator"))
    url = f"/api/v1/cases/{case_id}"

    async def patch(body: dict, headers=operator):
        return await client.patch(url, json=body, headers=headers)

    unknown = await patch({"categories": ["no_such"], "reason": "x"})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "unknown_category"
    assert "domestic_violence（家庭暴力" in unknown.json()["error"]["message"]
    assert "no_such" not in unknown.text  # the value is not echoed
    place = await patch({"jurisdiction": "123456", "reason": "x"})
    assert place.status_code == 422 and "990102（东湖市湖东区）" in place.json()["error"]["message"]
    assert (await patch({"emergency": True})).status_code == 422  # no reason
    nothing = await patch({"reason": "只是看看"})
    assert nothing.status_code == 422 and nothing.json()["error"]["code"] == "nothing_to_correct"
    assert (await patch({"categories": [], "reason": "x"})).status_code == 422
    assert (await patch({"child": {"age": 30}, "reason": "x"})).status_code == 422
    assert (await patch({"severity": 3, "reason": "x"})).status_code == 422
    # Scope: a liaison may not correct, a district's operator not elsewhere.
    liaison = await login(await make_user("liaison", "police", "990102001"))
    assert (await patch({"emergency": True, "reason": "x"}, liaison)).status_code == 403
    west = await login(await make_user("operator", jurisdiction="990103"))
    assert (await patch({"emergency": True, "reason": "x"}, west)).status_code == 404
    district = await login(await make_user("operator", jurisdiction="990102"))
    moved = await patch({"jurisdiction": "990103", "reason": "x"}, district)
    assert moved.status_code == 422 and moved.json()["error"]["code"] == "jurisdiction_out_of_scope"
    assert (await client.patch(url, json={"emergency": True, "reason": "x"})).status_code == 401


async def test_the_case_page_offers_the_same_correction(
    new_case, make_user, console_client, sessions, pump
):
    case_id = await new_case(situations=[], jurisdiction="990102001001")
    operator = await console_client(await make_user("operator"))
    page = await operator.get(f"/console/cases/{case_id}")
    assert f'action="/console/cases/{case_id}/correct"' in page.text
    done = await operator.post(
        f"/console/cases/{case_id}/correct",
        data={
            "csrf_token": form_token(page.text),
            "categories": ["domestic_violence", "dropout"],
            "emergency": "",
            "jurisdiction": "",
            "reason": "孩子已两周未到校",
        },
    )
    assert done.status_code == 303
    await pump()
    live = _live(await _referrals(sessions, case_id))
    assert "education" in live  # dropout's lead
    shown = await operator.get(f"/console/cases/{case_id}")
    assert "孩子已两周未到校" in shown.text and "更正" in shown.text
    assert "家庭暴力、虐待、遗弃 → 家庭暴力、虐待、遗弃、失学辍学" in shown.text
    refused = await operator.post(
        f"/console/cases/{case_id}/correct",
        data={"csrf_token": form_token(shown.text), "reason": "什么也没改"},
        follow_redirects=True,
    )
    assert "请至少更正一项" in refused.text


def test_a_referral_is_withdrawn_only_while_open_and_with_a_reason():
    for status in ("queued", "claimed", "in_progress"):
        assert apply_referral_event(status, "withdraw", note="不再需要") == "withdrawn"
    for status in ("completed", "returned", "cancelled", "withdrawn"):
        try:
            apply_referral_event(status, "withdraw", note="不再需要")
        except WorkflowRefused as refused:
            assert refused.code == "transition_not_allowed"
        else:
            raise AssertionError(f"withdrawn from {status}")
    try:
        apply_referral_event("queued", "withdraw", note=" ")
    except WorkflowRefused as refused:
        assert refused.code == "reason_required" and "撤回" in refused.message
    else:
        raise AssertionError("withdrawn without a reason")
    assert STATUS_LABELS["withdrawn"] == "已撤回"


async def test_moving_a_waiting_emergency_moves_police_copy_to_the_new_place(
    client, sessions, twilio, run_jobs, make_user, login
):
    from db.models import Report
    from tests.fixtures.twilio_fake import sms

    sender = mobile()
    await signed(client, "/channels/twilio/sms", sms(sender, "救命！有人持刀在打孩子"))
    await run_jobs()
    async with sessions() as session:
        case_id = (
            await session.execute(
                select(Report.case_id).where(Report.phone_index == phone_index(sender))
            )
        ).scalar_one()
    (first,) = await _referrals(sessions, case_id)
    assert first.department_code == "police" and first.jurisdiction_code == "990100"
    operator = await login(await make_user("operator"))
    answer = await client.patch(
        f"/api/v1/cases/{case_id}",
        json={"jurisdiction": "990103001001", "reason": "回电确认在湖滨村"},
        headers=operator,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "discovered"
    await run_jobs()
    old, new = await _referrals(sessions, case_id)
    assert old.id == first.id and old.status == "withdrawn"
    assert new.department_code == "police" and new.jurisdiction_code == "990103001"
    assert new.status == "queued"
