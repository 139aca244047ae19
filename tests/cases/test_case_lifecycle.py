"""A case's whole life through the API: report → routing → claim → assess → handle →
follow-up → close, with the receipt holder seeing the status change."""

import secrets

from sqlalchemy import select

from db.models import CaseEvent, Notification, Referral
from tests.fixtures.reports import report


async def test_full_life_of_a_case(client, make_user, login, pump, sessions):
    caseworker = await login(await make_user("caseworker"))
    police = await make_user("liaison", "police", "990102001", phone="+8613900000001")
    police_h = await login(police)
    civil = await login(await make_user("liaison", "civil_affairs", "990102"))

    created = (await client.post("/api/v1/reports", json=report())).json()
    case_id = created["case_id"]
    await pump()

    case = (await client.get(f"/api/v1/cases/{case_id}", headers=caseworker)).json()
    assert case["state"] == "reported"  # web-form reports are registered automatically
    departments = {r["department"]: r for r in case["referrals"]}
    assert set(departments) == {"police", "civil_affairs", "women_federation", "court",
                                "procuratorate"}
    assert all(r["status"] == "queued" for r in case["referrals"])

    # The police liaison of the street sees and claims it; the civil-affairs liaison too.
    mine = (await client.get(f"/api/v1/referrals?status=queued&case_id={case_id}",
                        headers=police_h)).json()
    police_ref = next(r for r in mine["items"] if r["case_id"] == case_id)
    assert police_ref["department"] == "police" and police_ref["jurisdiction"] == "990102001"
    assert police_ref["claim_due_at"] is not None
    claimed = await client.post(f"/api/v1/referrals/{police_ref['id']}/claim", headers=police_h)
    assert claimed.status_code == 200 and claimed.json()["status"] == "claimed"
    note = await client.post(f"/api/v1/referrals/{police_ref['id']}/progress",
                             json={"note": "已出警，孩子暂由祖母照看"}, headers=police_h)
    assert note.json()["status"] == "in_progress"

    # Handling needs a risk level first: refused with a clear message, not a 500.
    refused = await client.post(f"/api/v1/cases/{case_id}/events", json={"event": "handle"},
                                headers=caseworker)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "transition_not_allowed"

    ok = await client.post(f"/api/v1/cases/{case_id}/events", json={"event": "assess"},
                           headers=caseworker)
    assert ok.status_code == 200 and ok.json()["state"] == "assessing"
    refused = await client.post(f"/api/v1/cases/{case_id}/events", json={"event": "handle"},
                                headers=caseworker)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "risk_level_required"
    assessed = await client.post(
        f"/api/v1/cases/{case_id}/assessment",
        json={"risk_level": "orange", "guardianship": "父亲酗酒，母亲在外务工",
              "needs": ["监护干预", "心理咨询"]},
        headers=caseworker,
    )
    assert assessed.status_code == 200 and assessed.json()["risk_level"] == "orange"
    for event in ("handle", "follow_up"):
        moved = await client.post(f"/api/v1/cases/{case_id}/events", json={"event": event},
                                  headers=caseworker)
        assert moved.status_code == 200, moved.text

    # Orange case: no closing without a recorded follow-up visit.
    refused = await client.post(f"/api/v1/cases/{case_id}/events",
                                json={"event": "close", "reason": "已稳定"}, headers=caseworker)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "follow_up_visit_required"
    visit = await client.post(f"/api/v1/cases/{case_id}/visits",
                              json={"findings": "入户回访，孩子情况稳定", "risk_after": "yellow"},
                              headers=caseworker)
    assert visit.status_code == 201 and visit.json()["next_due_at"]

    done = await client.post(f"/api/v1/referrals/{police_ref['id']}/complete",
                             json={"outcome": "父亲已被训诫并出具告诫书"}, headers=police_h)
    assert done.json()["status"] == "completed"
    closed = await client.post(f"/api/v1/cases/{case_id}/events",
                               json={"event": "close", "reason": "监护已恢复"},
                               headers=caseworker)
    assert closed.status_code == 200 and closed.json()["state"] == "closed"

    receipt = (await client.get(f"/api/v1/receipts/{created['receipt_code']}")).json()
    assert receipt["status"] == "closed"

    case = (await client.get(f"/api/v1/cases/{case_id}", headers=caseworker)).json()
    statuses = {r["department"]: r["status"] for r in case["referrals"]}
    assert statuses["police"] == "completed"
    assert statuses["civil_affairs"] == "cancelled"  # open shares end with the case
    events = [e["event"] for e in case["timeline"]]
    for expected in ("intake", "register", "referral_created", "referral_claimed",
                     "referral_progress", "assess", "assessment", "handle", "follow_up",
                     "visit", "referral_completed", "close"):
        assert expected in events
    close_event = next(e for e in case["timeline"] if e["event"] == "close")
    assert close_event["reason"] == "监护已恢复" and close_event["actor"].startswith("caseworker:")

    reopened = await client.post(f"/api/v1/cases/{case_id}/events",
                                 json={"event": "reopen", "reason": "再次被打"},
                                 headers=caseworker)
    assert reopened.status_code == 200 and reopened.json()["state"] == "assessing"
    del civil

    # The police liaison was told of the new referral (sent to the log: no Twilio here).
    await pump()
    async with sessions() as session:
        notes = (await session.execute(
            select(Notification).where(Notification.user_id == police.id))).scalars().all()
    assert any(n.kind == "referral_new" and n.status == "logged" for n in notes)


async def test_mandatory_and_emergency_reports_reach_police_at_once(client, pump, sessions):
    # Dropout is education's; danger now sends police a copy as well.
    created = (await client.post("/api/v1/reports", json=report(
        categories=["dropout"], situations=[], in_danger_now=True,
        description=f"学生已经两个月没来上学，家长不让孩子上学。{secrets.token_hex(4)}"))).json()
    # Violence is police's to lead: danger now does not make police a mere copy.
    beaten = (await client.post("/api/v1/reports", json=report(in_danger_now=True))).json()
    await pump()
    async with sessions() as session:
        refs = (await session.execute(select(Referral).where(
            Referral.case_id.in_([created["case_id"], beaten["case_id"]])
        ).order_by(Referral.id))).scalars().all()
    roles = {r.department_code: r.role for r in refs if r.case_id == created["case_id"]}
    assert roles["education"] == "lead" and roles["police"] == "police_copy"
    led = [(r.department_code, r.role) for r in refs if r.case_id == beaten["case_id"]]
    assert led[0] == ("police", "lead") and [d for d, _ in led].count("police") == 1


async def test_sms_style_report_goes_to_police_before_registration(app, pump, sessions):
    from workflows.cases.intake import NewReport, record_report

    async with sessions() as session, session.begin():
        result = await record_report(session, NewReport(
            channel="sms", external_id=f"SM{secrets.token_hex(8)}",
            description="楼下有人在打孩子，孩子一直在喊救命", emergency=True,
            categories=["domestic_violence"]))
    await pump()
    async with sessions() as session:
        refs = (await session.execute(select(Referral).where(
            Referral.case_id == result.case_id))).scalars().all()
        events = (await session.execute(select(CaseEvent.event).where(
            CaseEvent.case_id == result.case_id))).scalars().all()
    assert [r.department_code for r in refs] == ["police"]
    assert "register" not in events  # an operator registers SMS tips after talking to them


async def test_only_a_supervisor_refuses_a_mandatory_or_emergency_report(
    client, make_user, login, pump, sessions
):
    """不予受理 of a child reported in danger, or by someone bound to report, is a
    supervisor's decision: an operator (or a caseworker) is told so, in the error shape."""
    from sqlalchemy import update

    from db.models import Case

    kinds = {"mandatory": (True, False), "emergency": (False, True), "neither": (False, False)}
    cases = {}
    for kind, (mandatory, emergency) in kinds.items():
        cases[kind] = (await client.post("/api/v1/reports", json=report())).json()["case_id"]
        await pump()
        async with sessions() as session, session.begin():
            await session.execute(update(Case).where(Case.id == cases[kind]).values(
                mandatory=mandatory, emergency=emergency))
    operator = await login(await make_user("operator"))
    caseworker = await login(await make_user("caseworker"))
    supervisor = await login(await make_user("supervisor"))
    body = {"event": "invalidate", "reason": "来电人称是恶作剧"}

    def url(kind: str) -> str:
        return f"/api/v1/cases/{cases[kind]}/events"

    for kind, label in (("mandatory", "强制报告"), ("emergency", "紧急案件")):
        for headers in (operator, caseworker):
            refused = await client.post(url(kind), json=body, headers=headers)
            assert refused.status_code == 403, refused.text
            error = refused.json()["error"]
            assert error["code"] == "supervisor_required"
            assert label in error["message"] and "督导" in error["message"]
        async with sessions() as session:
            state = await session.scalar(select(Case.state).where(Case.id == cases[kind]))
            events = (await session.execute(select(CaseEvent.event).where(
                CaseEvent.case_id == cases[kind]))).scalars().all()
        assert state == "reported" and "invalidate" not in events
        decided = await client.post(url(kind), json=body, headers=supervisor)
        assert decided.status_code == 200 and decided.json()["state"] == "invalid"
    # Anything else an operator may still refuse alone.
    plain = await client.post(url("neither"), json=body, headers=operator)
    assert plain.status_code == 200 and plain.json()["state"] == "invalid"
