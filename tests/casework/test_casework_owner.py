"""Owner and pairing through the API: assigning, reassigning with a reason, "my cases",
the area staff's scope (default deny), and the reminder before a visit is due."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from db.models import Visit
from dispatch.casework.owners import remind_visits
from tests.fixtures.lookups import notified
from tests.fixtures.reports import report

COMMUNITY, STREET = "990102001001", "990102001"


async def _case(client, pump, **changes) -> int:
    created = (await client.post("/api/v1/reports", json=report(**changes))).json()
    await pump()
    return created["case_id"]


async def test_owner_is_assigned_then_changed_only_with_a_reason(client, make_user, login, pump):
    supervisor = await login(await make_user("supervisor"))
    first, second = await make_user("caseworker"), await make_user("caseworker")
    case_id = await _case(client, pump)

    put = await client.put(
        f"/api/v1/cases/{case_id}/owner", headers=supervisor, json={"username": first.username}
    )
    assert put.status_code == 200, put.text
    assert put.json()["owner"] == first.username
    case = (await client.get(f"/api/v1/cases/{case_id}", headers=supervisor)).json()
    assert case["owner"] == first.username

    same = await client.put(
        f"/api/v1/cases/{case_id}/owner",
        headers=supervisor,
        json={"username": first.username, "reason": "x"},
    )
    assert same.status_code == 409 and same.json()["error"]["code"] == "no_change"
    bare = await client.put(
        f"/api/v1/cases/{case_id}/owner", headers=supervisor, json={"username": second.username}
    )
    assert bare.status_code == 422 and bare.json()["error"]["code"] == "reason_required"
    moved = await client.put(
        f"/api/v1/cases/{case_id}/owner",
        headers=supervisor,
        json={"username": second.username, "reason": "原社工休产假"},
    )
    assert moved.status_code == 200 and moved.json()["owner"] == second.username

    timeline = (await client.get(f"/api/v1/cases/{case_id}", headers=supervisor)).json()
    changes = [e for e in timeline["timeline"] if e["event"].startswith("owner_")]
    assert [(e["event"], e["reason"]) for e in changes][-1] == ("owner_changed", "原社工休产假")

    mine = (await client.get("/api/v1/casework/mine", headers=await login(second))).json()
    assert case_id in [c["id"] for c in mine["items"]]
    theirs = (await client.get("/api/v1/casework/mine", headers=await login(first))).json()
    assert case_id not in [c["id"] for c in theirs["items"]]


async def test_who_may_hold_a_case(client, make_user, login, pump):
    caseworker = await login(await make_user("caseworker"))
    case_id = await _case(client, pump)
    liaison = await make_user("liaison", "police", "990102")
    elsewhere = await make_user("child_director", jurisdiction="990102001002")
    for body, code in (
        ({"username": "nobody-here"}, "unknown_user"),
        ({"username": liaison.username}, "not_eligible"),
    ):
        answer = await client.put(f"/api/v1/cases/{case_id}/owner", headers=caseworker, json=body)
        assert answer.status_code == 422 and answer.json()["error"]["code"] == code
    away = await client.put(
        f"/api/v1/cases/{case_id}/pairing",
        headers=caseworker,
        json={"username": elsewhere.username},
    )
    assert away.status_code == 422 and away.json()["error"]["code"] == "out_of_area"
    refused = await client.put(
        f"/api/v1/cases/{case_id}/owner",
        headers=await login(liaison),
        json={"username": liaison.username},
    )
    assert refused.status_code == 403


async def test_area_staff_see_only_the_cases_assigned_to_them_in_their_area(
    client, make_user, login, pump
):
    caseworker = await login(await make_user("caseworker"))
    director = await make_user("child_director", jurisdiction=COMMUNITY)
    station = await make_user("station_worker", jurisdiction=STREET)
    director_h, station_h = await login(director), await login(station)
    paired = await _case(client, pump)
    other = await _case(client, pump)

    # Nothing before an assignment: default deny.
    assert (await client.get(f"/api/v1/cases/{paired}", headers=director_h)).status_code == 404
    put = await client.put(
        f"/api/v1/cases/{paired}/pairing", headers=caseworker, json={"username": director.username}
    )
    assert put.status_code == 200 and put.json()["pairing"] == director.username

    seen = await client.get(f"/api/v1/cases/{paired}", headers=director_h)
    assert seen.status_code == 200
    assert all(r["reporter"] is None for r in seen.json()["reports"])  # not the center
    assert (await client.get(f"/api/v1/cases/{other}", headers=director_h)).status_code == 404
    listed = (await client.get("/api/v1/cases?limit=200", headers=director_h)).json()["items"]
    assert [c["id"] for c in listed] == [paired]
    mine = (await client.get("/api/v1/casework/mine", headers=director_h)).json()["items"]
    assert [(c["id"], c["held_as"]) for c in mine] == [(paired, "pairing")]
    # The street's station worker holds nothing, so sees nothing.
    assert (await client.get(f"/api/v1/cases/{paired}", headers=station_h)).status_code == 404
    assert (await client.get("/api/v1/casework/mine", headers=station_h)).json()["items"] == []
    # Area staff do not assign, route or drive the workflow.
    for path, body in ((f"/api/v1/cases/{paired}/owner", {"username": director.username}),):
        assert (await client.put(path, headers=director_h, json=body)).status_code == 403
    event = await client.post(
        f"/api/v1/cases/{paired}/events", headers=director_h, json={"event": "assess"}
    )
    assert event.status_code == 403


async def test_holders_are_reminded_once_before_a_visit_is_due(
    client, make_user, login, pump, sessions
):
    caseworker_user = await make_user("caseworker")
    caseworker = await login(caseworker_user)
    director = await make_user("child_director", jurisdiction=COMMUNITY)
    case_id = await _case(client, pump)
    for path, who in (("owner", caseworker_user), ("pairing", director)):
        await client.put(
            f"/api/v1/cases/{case_id}/{path}", headers=caseworker, json={"username": who.username}
        )
    for step in ("assess",):
        await client.post(
            f"/api/v1/cases/{case_id}/events", headers=caseworker, json={"event": step}
        )
    await client.post(
        f"/api/v1/cases/{case_id}/assessment", headers=caseworker, json={"risk_level": "yellow"}
    )
    for step in ("handle", "follow_up"):
        moved = await client.post(
            f"/api/v1/cases/{case_id}/events", headers=caseworker, json={"event": step}
        )
        assert moved.status_code == 200, moved.text
    async with sessions() as session:
        due = await session.scalar(
            select(Visit.due_at).where(Visit.case_id == case_id, Visit.visited_at.is_(None))
        )
    early = due - timedelta(days=5)
    async with sessions() as session, session.begin():
        await remind_visits(session, max(early, datetime.now(UTC)))
    assert await notified(sessions, case_id, "visit_reminder") == []  # too early
    for _ in range(2):
        async with sessions() as session, session.begin():
            await remind_visits(session, due - timedelta(days=1))
    told = await notified(sessions, case_id, "visit_reminder")
    assert told == sorted([caseworker_user.id, director.id])  # each once
    mine = (await client.get("/api/v1/casework/mine", headers=caseworker)).json()["items"]
    row = next(c for c in mine if c["id"] == case_id)
    assert row["next_visit_due"] is not None and row["visit_overdue"] is False
