"""Closing to criteria through the API, liaisons told of cancelled referrals, and the
reporter's short SMS when the case is handled and closed, never when not to be contacted."""

import secrets

from sqlalchemy import select

from db.crypto import phone_index
from db.models import Notification, Referral
from db.telephony import SmsMessage
from tests.fixtures.console import form_token
from tests.fixtures.reports import report

pytest_plugins = ("tests.fixtures.console",)

CALM = {"guardian_duty": "able", "other_carer": "yes", "current_harm": "safe",
        "health": "good", "schooling": "in_school", "living": "adequate"}


def _phone() -> str:
    return "139" + "".join(secrets.choice("0123456789") for _ in range(8))


async def _to_follow_up(client, pump, headers, **changes) -> int:
    case_id = (await client.post("/api/v1/reports", json=report(**changes))).json()["case_id"]
    await pump()
    base = f"/api/v1/cases/{case_id}"
    await client.post(f"{base}/events", headers=headers, json={"event": "assess"})
    await client.post(f"{base}/assessment", headers=headers, json={"risk_level": "orange"})
    for step in ("handle", "follow_up"):
        moved = await client.post(f"{base}/events", headers=headers, json={"event": step})
        assert moved.status_code == 200, moved.text
    return case_id


async def _notices(sessions, phone: str) -> list[str]:
    async with sessions() as session:
        rows = (await session.execute(select(SmsMessage.body).where(
            SmsMessage.phone_index == phone_index("+86" + phone),
            SmsMessage.kind == "notice"))).scalars()
        return list(rows)


async def test_an_orange_case_closes_to_criteria_and_everyone_is_told(client, make_user, login,
                                                                      pump, sessions):
    caseworker = await login(await make_user("caseworker"))
    police = await make_user("liaison", "police", "990102001")
    phone = _phone()
    reporter = {"name": "李老师", "unit": "第一小学", "role": "teacher", "phone": phone}
    case_id = await _to_follow_up(client, pump, caseworker, reporter=reporter)
    notices = await _notices(sessions, phone)
    assert len(notices) == 1 and "已转交相关部门处置" in notices[0]
    assert "王小明" not in notices[0] and "殴打" not in notices[0]  # no details
    base = f"/api/v1/cases/{case_id}"

    refused = await client.post(f"{base}/close", headers=caseworker,
                                json={"type": "risk_removed"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "last_visit_required"
    await client.post(f"{base}/visits", headers=caseworker, json={"findings": "孩子状况好转"})
    refused = await client.post(f"{base}/close", headers=caseworker,
                                json={"type": "risk_removed"})
    assert refused.json()["error"]["code"] == "closing_assessment_required"
    await client.post(f"{base}/assessments", headers=caseworker, json={
        "answers": CALM, "summary": "结案评估：风险已消除", "risk_level": "orange",
        "override_reason": "保持观察至结案"})
    odd = await client.post(f"{base}/close", headers=caseworker, json={"type": "lost"})
    assert odd.status_code == 409 and "风险已消除" in odd.json()["error"]["message"]

    async with sessions() as session:
        police_ref = await session.scalar(select(Referral.id).where(
            Referral.case_id == case_id, Referral.department_code == "police",
            Referral.status == "queued"))
    closed = await client.post(f"{base}/close", headers=caseworker,
                               json={"type": "risk_removed", "reason": "父亲已接受训诫并改正"})
    assert closed.status_code == 200, closed.text
    assert closed.json()["state"] == "closed"
    async with sessions() as session:
        told = (await session.execute(select(Notification.user_id).where(
            Notification.referral_id == police_ref, Notification.kind == "referral_cancelled"
        ))).scalars().all()
    assert police.id in told  # (other tests' police liaisons of the street are told too)
    notices = await _notices(sessions, phone)
    assert len(notices) == 2 and "已办结" in notices[1]
    receipt = notices[1].split("回执")[1].split("）")[0]
    status = await client.get(f"/api/v1/receipts/{receipt}")
    assert status.status_code == 200 and status.json()["status"] == "closed"


async def test_a_reporter_marked_not_to_contact_is_never_texted(client, make_user, login, pump,
                                                                sessions):
    caseworker = await login(await make_user("caseworker"))
    asked, shared = _phone(), _phone()
    by_form = {"name": "王医生", "role": "doctor", "phone": asked, "no_contact": True}
    case_a = await _to_follow_up(client, pump, caseworker, reporter=by_form)
    assert await _notices(sessions, asked) == []

    # The operator marks a reporter whose phone may be shared with the harm, before handling.
    operator = await login(await make_user("operator"))
    created = (await client.post("/api/v1/reports", json=report(
        reporter={"name": "邻居", "role": "other", "phone": shared}))).json()
    await pump()
    marked = await client.put(f"/api/v1/reports/{created['report_id']}/no-contact",
                              headers=operator, json={"reason": "shared_phone"})
    assert marked.status_code == 204, marked.text
    again = await client.put(f"/api/v1/reports/{created['report_id']}/no-contact",
                             headers=operator, json={"reason": "asked"})
    assert again.status_code == 409
    base = f"/api/v1/cases/{created['case_id']}"
    await client.post(f"{base}/events", headers=caseworker, json={"event": "assess"})
    await client.post(f"{base}/assessment", headers=caseworker, json={"risk_level": "blue"})
    await client.post(f"{base}/events", headers=caseworker, json={"event": "handle"})
    closed = await client.post(f"{base}/close", headers=caseworker, json={"type": "other"})
    assert closed.status_code == 200, closed.text
    assert await _notices(sessions, shared) == []
    # The receipt still answers for both.
    assert case_a


async def test_a_caller_is_texted_only_when_they_agreed_on_the_call(
    client, make_user, login, pump, sessions, seed, console_client
):
    """The number a call came from may be the child's or shared with the harm: the operator
    asks, and only a caller who agreed is texted the handling result."""
    operator = await console_client(await make_user("operator"))
    caseworker = await login(await make_user("caseworker"))
    told = {}
    for consent in (True, False):
        phone = _phone()
        sid = await seed.waiting_call(phone="+86" + phone)
        page = await operator.get(f"/console/operator/calls/{sid}/report")
        form = {"csrf_token": form_token(page.text), "description": "来电称邻居家孩子经常挨打",
                "categories": "domestic_violence", "jurisdiction": "990102001001"}
        if consent:
            form["reporter_sms_consent"] = "yes"
        posted = await operator.post(f"/console/operator/calls/{sid}/report", data=form)
        assert posted.status_code == 303, posted.text
        case_id = int(posted.headers["location"].rsplit("/", 1)[1])
        await pump()
        base = f"/api/v1/cases/{case_id}"
        for event in ("register", "assess"):  # a call's report may wait for the operator
            await client.post(f"{base}/events", headers=caseworker, json={"event": event})
        await client.post(f"{base}/assessment", headers=caseworker, json={"risk_level": "blue"})
        handled = await client.post(f"{base}/events", headers=caseworker, json={"event": "handle"})
        assert handled.status_code == 200, handled.text
        told[consent] = await _notices(sessions, phone)
    assert len(told[True]) == 1 and "已转交相关部门处置" in told[True][0]
    assert told[False] == []


async def test_a_supervisor_may_close_past_the_criteria_with_a_reason_and_nobody_else(
    client, make_user, login, pump, console_client
):
    """The case page offers one close, to the criteria; a supervisor can still close a case
    whose criteria cannot be met (the family refuses visits), on the record with a reason."""
    caseworker_user = await make_user("caseworker")
    caseworker = await login(caseworker_user)
    supervisor_user = await make_user("supervisor")
    supervisor = await login(supervisor_user)
    case_id = await _to_follow_up(client, pump, caseworker)
    base = f"/api/v1/cases/{case_id}"

    page = (await (await console_client(caseworker_user)).get(f"/console/cases/{case_id}")).text
    assert 'name="event" value="close"' not in page  # no close that skips the criteria
    assert f'action="/console/cases/{case_id}/close"' in page and "督导强制结案" not in page

    not_yours = await client.post(f"{base}/close", headers=caseworker, json={
        "type": "other", "reason": "家属拒绝回访", "override": True})
    assert not_yours.status_code == 403
    assert not_yours.json()["error"]["code"] == "override_not_allowed"
    no_reason = await client.post(f"{base}/close", headers=supervisor, json={
        "type": "other", "override": True})
    assert no_reason.status_code == 422
    assert no_reason.json()["error"]["code"] == "reason_required"

    console = await console_client(supervisor_user)
    page = await console.get(f"/console/cases/{case_id}")
    assert "督导强制结案" in page.text
    done = await console.post(f"/console/cases/{case_id}/close", data={
        "csrf_token": form_token(page.text), "type": "other",
        "reason": "家属拒绝回访，已移交社区跟进", "override": "yes"})
    assert done.status_code == 303
    case = (await client.get(base, headers=supervisor)).json()
    assert case["state"] == "closed"
    close_event = next(e for e in case["timeline"] if e["event"] == "close")
    assert "家属拒绝回访" in close_event["reason"]
