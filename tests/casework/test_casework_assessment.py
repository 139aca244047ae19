"""The written assessment through the API: the form proposes a level, the caseworker accepts
it or overrides it with a reason, each reassessment is a new version, the case follows."""

from tests.fixtures.reports import report

CALM = {"guardian_duty": "able", "other_carer": "yes", "current_harm": "safe",
        "health": "good", "schooling": "in_school", "living": "adequate"}


async def test_assess_accept_override_and_keep_every_version(client, make_user, login, pump):
    caseworker = await login(await make_user("caseworker"))
    case_id = (await client.post("/api/v1/reports", json=report())).json()["case_id"]
    await pump()
    await client.post(f"/api/v1/cases/{case_id}/events", headers=caseworker,
                      json={"event": "assess"})
    url = f"/api/v1/cases/{case_id}/assessments"

    first = await client.post(url, headers=caseworker, json={
        "answers": {**CALM, "current_harm": "ongoing"}, "summary": "父亲反复殴打，需立即干预",
        "needs": ["监护干预"]})
    assert first.status_code == 201, first.text
    assert first.json()["proposed_level"] == "red" and first.json()["risk_level"] == "red"
    case = (await client.get(f"/api/v1/cases/{case_id}", headers=caseworker)).json()
    assert case["risk_level"] == "red"

    lower = {"answers": {**CALM, "guardian_duty": "weak"}, "summary": "父亲已被带离，母亲照料",
             "risk_level": "orange"}
    bare = await client.post(url, headers=caseworker, json=lower)
    assert bare.status_code == 422
    assert bare.json()["error"]["code"] == "override_reason_required"
    assert "蓝" in bare.json()["error"]["message"]
    second = await client.post(url, headers=caseworker,
                               json={**lower, "override_reason": "施暴人可能随时返回"})
    assert second.status_code == 201
    assert (second.json()["proposed_level"], second.json()["risk_level"]) == ("blue", "orange")

    missing = await client.post(url, headers=caseworker, json={
        "answers": {"guardian_duty": "able"}, "summary": "x"})
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "answer_required"

    versions = (await client.get(url, headers=caseworker)).json()["items"]
    assert [(v["version"], v["risk_level"], v["override_reason"]) for v in versions] == [
        (2, "orange", "施暴人可能随时返回"), (1, "red", None)]
    case = (await client.get(f"/api/v1/cases/{case_id}", headers=caseworker)).json()
    assert case["risk_level"] == "orange"
    assert case["assessment"]["proposed_level"] == "blue"

    liaison = await login(await make_user("liaison", "police", "990102"))
    assert (await client.post(url, headers=liaison, json=lower)).status_code == 403
