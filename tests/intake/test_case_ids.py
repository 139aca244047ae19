"""The ids a reporter is answered say nothing of how many reports came in between (issue
14): consecutive intakes get ids that grow with time but are not a sequence's steps, far
above the old serials, and they work everywhere an id is given back."""

import asyncio

from db.models import Case, Report
from tests.fixtures.reports import report

EPOCH_TICKS = 2**12  # the low 12 bits are the permuted sequence, the rest the millisecond


async def test_consecutive_intakes_get_growing_ids_that_are_not_a_sequence(
    client, sessions, make_user, login
):
    answers = []
    for _ in range(4):
        await asyncio.sleep(0.002)  # ids order by their millisecond; within one, in no order
        response = await client.post("/api/v1/reports", json=report())
        assert response.status_code == 201, response.text
        answers.append(response.json())
    for key in ("case_id", "report_id"):
        ids = [a[key] for a in answers]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)  # later is larger
        assert min(ids) > 2**40 and max(ids) < 2**53  # not serials; safe in JavaScript
        steps = {b - a for a, b in zip(ids, ids[1:], strict=False)}
        assert steps != {1}, ids  # a serial's steps would say how many came in between
        assert ids[-1] // EPOCH_TICKS - ids[0] // EPOCH_TICKS < 1000 * 60  # within a minute
    async with sessions() as session:
        for answer in answers:
            case = await session.get(Case, answer["case_id"])
            assert (await session.get(Report, answer["report_id"])).case_id == case.id
    headers = await login(await make_user("supervisor"))
    shown = await client.get(f"/api/v1/cases/{answers[-1]['case_id']}", headers=headers)
    assert shown.status_code == 200 and shown.json()["id"] == answers[-1]["case_id"]
    # newest first, the next page before the last id shown
    newest = [a["case_id"] for a in reversed(answers)]
    listed = await client.get("/api/v1/cases", headers=headers, params={"limit": 2})
    assert [c["id"] for c in listed.json()["items"]] == newest[:2]
    assert listed.json()["next_before_id"] == newest[1]
    page = await client.get("/api/v1/cases", headers=headers,
                            params={"limit": 2, "before_id": newest[1]})
    assert [c["id"] for c in page.json()["items"]] == newest[2:]
