"""Guardianship, placements and the intervention sequence through the API."""

from tests.fixtures.reports import report


async def test_placements_and_the_steps_against_a_guardian(client, make_user, login, pump):
    caseworker = await login(await make_user("caseworker"))
    case_id = (await client.post("/api/v1/reports", json=report())).json()["case_id"]
    await pump()
    base = f"/api/v1/cases/{case_id}"

    placed = await client.post(f"{base}/placements", headers=caseworker, json={
        "kind": "temporary_guardianship", "body": "东湖市未成年人救助保护中心",
        "department": "civil_affairs", "start_on": "2026-11-20"})
    assert placed.status_code == 201, placed.text
    backwards = await client.post(f"{base}/placements", headers=caseworker, json={
        "kind": "family_foster", "body": "寄养家庭", "start_on": "2026-11-20",
        "end_on": "2026-11-01"})
    assert backwards.status_code == 422
    assert backwards.json()["error"]["code"] == "end_before_start"
    odd = await client.post(f"{base}/placements", headers=caseworker, json={
        "kind": "boarding", "body": "x", "start_on": "2026-11-20"})
    assert odd.status_code == 422 and "临时监护" in odd.json()["error"]["message"]

    step = f"{base}/interventions"
    wrong = await client.post(step, headers=caseworker, json={
        "step": "reprimand", "department": "education", "acted_on": "2026-11-21"})
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "wrong_department"
    assert "公安" in wrong.json()["error"]["message"]
    skipped = await client.post(step, headers=caseworker, json={
        "step": "reprimand", "department": "police", "acted_on": "2026-11-21"})
    assert skipped.status_code == 422 and skipped.json()["error"]["code"] == "step_skipped"
    for body in (
        {"step": "admonish", "department": "minor_protection_center", "acted_on": "2026-11-19"},
        {"step": "reprimand", "department": "police", "acted_on": "2026-11-21",
         "document": "东公（幸）告字〔2026〕15号"},
        {"step": "revocation_suit", "department": "procuratorate", "acted_on": "2026-11-28",
         "skip_reason": "监护人屡教不改、严重侵害，直接支持起诉"},
    ):
        done = await client.post(step, headers=caseworker, json=body)
        assert done.status_code == 201, done.text

    record = (await client.get(f"{base}/guardianship", headers=caseworker)).json()
    assert [p["kind"] for p in record["placements"]] == ["temporary_guardianship"]
    assert [(i["step"], i["department"]) for i in record["interventions"]] == [
        ("admonish", "minor_protection_center"), ("reprimand", "police"),
        ("revocation_suit", "procuratorate")]
    case = (await client.get(base, headers=caseworker)).json()
    assert sum(e["event"] == "guardian_intervention" for e in case["timeline"]) == 3
