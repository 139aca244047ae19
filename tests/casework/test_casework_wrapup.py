"""Call wrap-up through the API: every answered call closed with a type, a consultation
recorded without a case, refusals for what would be wrong, statistics by type."""

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from db.models import Case
from db.telephony import VoiceCall
from tests.fixtures.reports import report


async def _call(sessions, *, answered: bool = True, case_id: int | None = None) -> str:
    now = datetime.now(UTC)
    sid = "CA" + secrets.token_hex(16)
    async with sessions() as session, session.begin():
        session.add(VoiceCall(call_sid=sid, phone="+8613912345678", status="completed",
                              route="open", answered_at=now if answered else None,
                              case_id=case_id, created_at=now, updated_at=now))
    return sid


async def test_each_answered_call_is_wrapped_up_once_and_counted_by_type(client, make_user,
                                                                         login, pump, sessions):
    operator = await login(await make_user("operator"))
    since = datetime.now(UTC) - timedelta(seconds=1)
    async with sessions() as session:
        cases_before = await session.scalar(select(func.count()).select_from(Case))

    consult = await _call(sessions)
    done = await client.post(f"/api/v1/calls/{consult}/wrapup", headers=operator,
                             json={"type": "consultation", "note": "咨询孩子转学的手续"})
    assert done.status_code == 201, done.text
    assert done.json()["type"] == "consultation" and done.json()["case_id"] is None
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == cases_before

    twice = await client.post(f"/api/v1/calls/{consult}/wrapup", headers=operator,
                              json={"type": "nuisance"})
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "already_wrapped_up"

    unanswered = await _call(sessions, answered=False)
    refused = await client.post(f"/api/v1/calls/{unanswered}/wrapup", headers=operator,
                                json={"type": "silent"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "call_not_answered"

    no_report = await _call(sessions)
    refused = await client.post(f"/api/v1/calls/{no_report}/wrapup", headers=operator,
                                json={"type": "report"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "report_not_linked"

    case_id = (await client.post("/api/v1/reports", json=report())).json()["case_id"]
    await pump()
    reported = await _call(sessions, case_id=case_id)
    ok = await client.post(f"/api/v1/calls/{reported}/wrapup", headers=operator,
                           json={"type": "report"})
    assert ok.status_code == 201 and ok.json()["case_id"] == case_id
    silent = await _call(sessions)
    await client.post(f"/api/v1/calls/{silent}/wrapup", headers=operator, json={"type": "silent"})

    bad = await client.post(f"/api/v1/calls/{silent}/wrapup", headers=operator,
                            json={"type": "chat"})
    assert bad.status_code == 422

    until = datetime.now(UTC) + timedelta(seconds=1)
    stats = await client.get("/api/v1/calls/wrapups/stats", headers=operator,
                             params={"since": since.isoformat(), "until": until.isoformat()})
    assert stats.status_code == 200, stats.text
    counts = {i["type"]: i["count"] for i in stats.json()["items"]}
    assert counts["consultation"] >= 1 and counts["report"] >= 1 and counts["silent"] >= 1
    assert set(counts) == {"report", "consultation", "help", "nuisance", "silent",
                           "wrong_number"}
    assert stats.json()["not_wrapped_up"] >= 1  # the unlinked call still waits for its type
    labels = {i["type"]: i["label"] for i in stats.json()["items"]}
    assert labels["wrong_number"] == "打错电话"

    liaison = await login(await make_user("liaison", "police", "990102"))
    assert (await client.post(f"/api/v1/calls/{no_report}/wrapup", headers=liaison,
                              json={"type": "help"})).status_code == 403
