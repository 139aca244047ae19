"""The legal hold (诉讼保全) on a case: the center's supervisor's, in scope, with a reason,
on the timeline and in the audit log; others get 403 in the contract's error shape."""

from datetime import timedelta

from sqlalchemy import select

from db.models import AuditLog, CaseEvent
from tests.retention.cases import case


async def test_the_legal_hold_is_the_center_supervisors_in_scope(
    sessions, client, make_user, login
):
    case_id = await case(sessions, "handling", timedelta(days=1))
    url = f"/api/v1/cases/{case_id}/legal-hold"
    body = {"reason": "检察院调阅"}
    for user in (await make_user("caseworker"), await make_user("operator"),
                 await make_user("supervisor", "education", "990103"),
                 await make_user("admin")):
        refused = await client.put(url, headers=await login(user), json=body)
        assert refused.status_code == 403, (user.role, refused.text)
        assert refused.json() == {"error": {
            "code": "forbidden", "message": "只有中心主管可以设置或解除诉讼保全"}}
    elsewhere = await login(await make_user("supervisor", jurisdiction="990102"))
    assert (await client.put(url, headers=elsewhere, json=body)).status_code == 404
    assert (await client.put(url, json=body)).status_code == 401

    supervisor_user = await make_user("supervisor")
    supervisor = await login(supervisor_user)
    blank = await client.put(url, headers=supervisor, json={"reason": "  "})
    assert blank.status_code == 422
    assert blank.json()["error"]["message"] == "请填写设置诉讼保全的理由"
    placed = await client.put(url, headers=supervisor, json=body)
    assert placed.status_code == 200
    assert placed.json()["held"] and placed.json()["reason"] == "检察院调阅"
    assert (await client.put(url, headers=supervisor, json=body)).status_code == 200  # retry
    other = await client.put(url, headers=supervisor, json={"reason": "另一理由"})
    assert other.status_code == 409 and other.json()["error"]["message"].startswith("该案件已处于")

    seen = await client.get(url, headers=await login(await make_user("caseworker")))
    assert seen.status_code == 200 and seen.json()["by"] == f"supervisor:{supervisor_user.username}"
    lifted = await client.request("DELETE", url, headers=supervisor, json={"reason": "调阅完毕"})
    assert lifted.status_code == 200 and lifted.json()["held"] is False
    twice = await client.request("DELETE", url, headers=supervisor, json={"reason": "调阅完毕"})
    assert twice.status_code == 409 and twice.json()["error"]["message"] == "该案件未处于诉讼保全"

    async with sessions() as session:
        events = (await session.execute(select(CaseEvent.event, CaseEvent.reason).where(
            CaseEvent.case_id == case_id, CaseEvent.event.like("legal_hold%")
        ).order_by(CaseEvent.id))).all()
        audits = (await session.execute(select(AuditLog.action).where(
            AuditLog.object_id == str(case_id), AuditLog.action.like("case.legal_hold%")
        ).order_by(AuditLog.id))).scalars().all()
    assert events == [("legal_hold_placed", "检察院调阅"), ("legal_hold_lifted", "调阅完毕")]
    assert audits == ["case.legal_hold", "case.legal_hold_lift"]
