"""Scope on every list endpoint besides the two of test_list_scope.py, for every role that
may list: a row in scope is present and one just out of scope (the district next door, the
level above a street's staff, the next department) absent, on every page where the list
pages; the roles that may not list get 403.

The rows are made in 南山县 (990104), where few other tests report, against 湖西区 (990103)
next door; the lists hold other tests' rows too, so the assertions are about the rows made
here only."""

import secrets

import pytest
from sqlalchemy import select, update

from db.models import Case
from db.telephony import VoiceCall
from tests.fixtures.reports import report

pytest_plugins = ("tests.fixtures.console", "tests.fixtures.partners")

IN_SCOPE = "990104001001"  # 南山县青石镇石门村
OUT_OF_SCOPE = "990103001001"  # 湖西区湖滨街道湖滨村, the district next door
DISTRICT, NEIGHBOUR = "990104", "990103"
STREET = "990104001"  # 青石镇: its staff do not see a case filed at the county itself

CENTER = [("operator", None), ("caseworker", None), ("supervisor", None)]
# Neither cases nor their records: the accounts' administrators and the area staff's
# neighbours in the role table, each where the endpoint is not theirs.
DEPARTMENT = [("liaison", "police"), ("supervisor", "police")]
AREA = [("child_director", None), ("station_worker", None)]


async def _case(client, jurisdiction: str, **changes) -> int:
    created = await client.post("/api/v1/reports", json=report(jurisdiction=jurisdiction,
                                                                 **changes))
    assert created.status_code == 201, created.text
    return created.json()["case_id"]


async def _cases(client, pump, inside: int = 2) -> tuple[list[int], int]:
    """`inside` cases in 南山县 and, newest, one next door, all routed (domestic violence:
    police leads, civil affairs and others help)."""
    ours = [await _case(client, IN_SCOPE) for _ in range(inside)]
    theirs = await _case(client, OUT_OF_SCOPE)
    await pump()
    return ours, theirs


async def _pages(client, url: str, headers, *, cursor: str, param: str, **params
                 ) -> list[list[dict]]:
    """Every page of a list, one row a page, following the list's own cursor."""
    pages: list[list[dict]] = []
    position = None
    for _ in range(2000):  # a deadline for a loop that never ends, not a size
        query = {"limit": 1, **params, **({param: position} if position else {})}
        page = await client.get(url, headers=headers, params=query)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= 1
        pages.append(body["items"])
        position = body[cursor]
        if position is None:
            return pages
    raise AssertionError(f"{url} never reached its last page")


def _assert_paged_scope(pages: list[list[dict]], inside: list[int], outside: set[int],
                        key: str = "id") -> None:
    """Every row in scope on some page, past the first page too; none out of it on any."""
    where = {item[key]: n for n, page in enumerate(pages) for item in page}
    missing = set(inside) - set(where)
    assert not missing, f"rows in scope missing: {missing}"
    assert max(where[i] for i in inside) >= 1, "nothing in scope past the first page"
    shown = outside & set(where)
    assert not shown, f"rows out of scope shown: {shown}"


async def _refused(client, make_user, login, url: str, who, **params) -> None:
    for role, department, jurisdiction in who:
        headers = await login(await make_user(role, department, jurisdiction))
        answer = await client.get(url, headers=headers, params=params)
        assert answer.status_code == 403, (role, department, answer.text)
        assert answer.json()["error"]["message"]  # the contract's error shape, in Chinese


async def _move(sessions, case_id: int, jurisdiction: str) -> None:
    """The case corrected to another place after it was assigned."""
    async with sessions() as session, session.begin():
        await session.execute(
            update(Case).where(Case.id == case_id).values(jurisdiction_code=jurisdiction)
        )


# --- cases -----------------------------------------------------------------------------


@pytest.mark.parametrize("role,department,jurisdiction", [
    *[(r, d, DISTRICT) for r, d in CENTER],
    *[(r, d, DISTRICT) for r, d in DEPARTMENT],
])
async def test_case_list_pages_show_the_district_and_not_next_door(
    client, make_user, login, pump, role, department, jurisdiction
):
    inside, outside = await _cases(client, pump)
    headers = await login(await make_user(role, department, jurisdiction))
    pages = await _pages(client, "/api/v1/cases", headers, cursor="next_before_id",
                         param="before_id")
    _assert_paged_scope(pages, inside, {outside})


async def test_a_streets_center_staff_do_not_see_the_county_above_them(
    client, make_user, login, pump
):
    inside = [await _case(client, IN_SCOPE) for _ in range(2)]
    above = await _case(client, DISTRICT)  # filed at the county, not at 青石镇
    await pump()
    for role, department in CENTER:
        headers = await login(await make_user(role, department, STREET))
        pages = await _pages(client, "/api/v1/cases", headers, cursor="next_before_id",
                             param="before_id")
        _assert_paged_scope(pages, inside, {above})


async def test_the_next_department_sees_none_of_the_cases(client, make_user, login, pump):
    """Domestic violence goes to police and civil affairs, never to education: the county's
    education liaison and supervisor see neither case, the police's do."""
    inside, outside = await _cases(client, pump)
    for role in ("liaison", "supervisor"):
        headers = await login(await make_user(role, "education", DISTRICT))
        pages = await _pages(client, "/api/v1/cases", headers, cursor="next_before_id",
                             param="before_id")
        seen = {item["id"] for page in pages for item in page}
        assert not ({*inside, outside} & seen)


async def test_area_staff_list_the_cases_paired_with_them_inside_their_area(
    client, make_user, login, pump, sessions
):
    city = await login(await make_user("caseworker"))
    for role, jurisdiction in (("child_director", IN_SCOPE), ("station_worker", STREET)):
        person = await make_user(role, None, jurisdiction)
        paired = [await _case(client, IN_SCOPE) for _ in range(2)]
        moved = await _case(client, IN_SCOPE)  # paired, then corrected to next door
        beside = await _case(client, IN_SCOPE)  # the same village, paired with nobody
        await pump()
        for case_id in (*paired, moved):
            put = await client.put(f"/api/v1/cases/{case_id}/pairing", headers=city,
                                   json={"username": person.username})
            assert put.status_code == 200, put.text
        await _move(sessions, moved, OUT_OF_SCOPE)
        headers = await login(person)
        pages = await _pages(client, "/api/v1/cases", headers, cursor="next_before_id",
                             param="before_id")
        _assert_paged_scope(pages, paired, {moved, beside})
        # "My cases" (no paging: a limit only) holds the same.
        mine = await client.get("/api/v1/casework/mine", headers=headers, params={"limit": 200})
        assert mine.status_code == 200, mine.text
        held = {item["id"] for item in mine.json()["items"]}
        assert set(paired) <= held and not {moved, beside} & held


async def test_who_may_not_list_cases_is_refused(client, make_user, login):
    await _refused(client, make_user, login, "/api/v1/cases",
                   [("inspector", None, DISTRICT), ("admin", None, "990100")])


# --- my cases --------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["caseworker", "supervisor"])
async def test_my_cases_are_mine_and_in_scope(client, make_user, login, pump, sessions, role):
    """No paging (a limit only). Held and in scope: listed. Held but corrected to next
    door, or in scope but held by a colleague: not."""
    person = await make_user(role, None, DISTRICT)
    colleague = await make_user("caseworker", None, DISTRICT)
    city = await login(await make_user("supervisor"))
    held = [await _case(client, IN_SCOPE) for _ in range(2)]
    moved = await _case(client, IN_SCOPE)
    theirs = await _case(client, IN_SCOPE)
    await pump()
    for case_id, who in ((held[0], person), (held[1], person), (moved, person),
                         (theirs, colleague)):
        put = await client.put(f"/api/v1/cases/{case_id}/owner", headers=city,
                               json={"username": who.username})
        assert put.status_code == 200, put.text
    await _move(sessions, moved, OUT_OF_SCOPE)
    mine = await client.get("/api/v1/casework/mine", headers=await login(person),
                            params={"limit": 200})
    assert mine.status_code == 200, mine.text
    listed = {item["id"] for item in mine.json()["items"]}
    assert set(held) <= listed and not {moved, theirs} & listed
    # A department's supervisor holds no cases: an empty list, nothing of the center's.
    police = await login(await make_user("supervisor", "police", DISTRICT))
    none = await client.get("/api/v1/casework/mine", headers=police)
    assert none.status_code == 200 and none.json()["items"] == []
    await _refused(client, make_user, login, "/api/v1/casework/mine",
                   [("operator", None, DISTRICT), ("liaison", "police", DISTRICT),
                    ("inspector", None, DISTRICT), ("admin", None, "990100")])


# --- referrals -------------------------------------------------------------------------


async def _referrals(client, city, case_id: int) -> list[dict]:
    listed = await client.get("/api/v1/referrals", headers=city,
                              params={"case_id": case_id, "limit": 200})
    assert listed.status_code == 200, listed.text
    return listed.json()["items"]


@pytest.mark.parametrize("role,department", [*CENTER, *DEPARTMENT,
                                             ("liaison", "education")])
async def test_referral_list_pages_show_the_scope_and_nothing_beside(
    client, make_user, login, pump, role, department
):
    inside, outside = await _cases(client, pump)
    city = await login(await make_user("supervisor"))
    ours = [r for case_id in inside for r in await _referrals(client, city, case_id)]
    theirs = await _referrals(client, city, outside)
    assert ours and theirs
    if department is None:
        expected = [r["id"] for r in ours]
    else:  # the department's own share only
        expected = [r["id"] for r in ours if r["department"] == department]
    hidden = {r["id"] for r in (*ours, *theirs)} - set(expected)
    headers = await login(await make_user(role, department, DISTRICT))
    pages = await _pages(client, "/api/v1/referrals", headers, cursor="next_after",
                         param="after")
    if expected:
        _assert_paged_scope(pages, expected, hidden)
    else:  # domestic violence is none of education's business
        assert not hidden & {item["id"] for page in pages for item in page}


async def test_who_may_not_list_referrals_is_refused(client, make_user, login):
    await _refused(client, make_user, login, "/api/v1/referrals",
                   [*[(r, d, IN_SCOPE) for r, d in AREA], ("inspector", None, DISTRICT),
                    ("admin", None, "990100")])


# --- the hotline's records: SMS threads, calls, call-backs, the queue -------------------


def _phone() -> str:
    return "+86139" + "".join(secrets.choice("0123456789") for _ in range(8))


NOT_THE_DESK = [*[(r, d, DISTRICT) for r, d in DEPARTMENT], *[(r, d, IN_SCOPE) for r, d in AREA],
                ("inspector", None, DISTRICT), ("admin", None, "990100")]


@pytest.mark.parametrize("role,department", CENTER)
async def test_hotline_lists_show_the_district_and_not_next_door(
    client, make_user, login, seed, sessions, role, department
):
    ours = [await seed.hotline_records(await _case(client, IN_SCOPE), _phone())
            for _ in range(2)]
    theirs = await seed.hotline_records(await _case(client, OUT_OF_SCOPE), _phone())
    unlinked = await seed.waiting_call(_phone())  # tied to no case: the city center's
    async with sessions() as session, session.begin():
        unlinked_id = await session.scalar(select(VoiceCall.id).where(
            VoiceCall.call_sid == unlinked))
        # Not waiting any more: this test's call must not stand in the other tests' queue.
        await session.execute(update(VoiceCall).where(VoiceCall.id == unlinked_id)
                              .values(status="completed"))
    headers = await login(await make_user(role, department, DISTRICT))

    threads = await _pages(client, "/api/v1/sms/threads", headers, cursor="next_before_id",
                           param="before_id")
    _assert_paged_scope(threads, [r["thread_id"] for r in ours], {theirs["thread_id"]})

    calls = await _pages(client, "/api/v1/voice/calls", headers, cursor="next_before_id",
                         param="before_id")
    sids = {item["id"]: item["call_sid"] for page in calls for item in page}
    assert {r["call_sid"] for r in ours} <= set(sids.values())
    assert not {theirs["call_sid"], unlinked} & set(sids.values())
    assert len([p for p in calls if p]) > 1

    # Call-backs: a limit, no paging.
    for status in ("pending", "done"):
        listed = await client.get("/api/v1/voice/callbacks", headers=headers,
                                  params={"status": status, "limit": 200})
        assert listed.status_code == 200, listed.text
        ids = {item["id"] for item in listed.json()["items"]}
        if status == "pending":
            assert {r["callback_id"] for r in ours} <= ids
        assert theirs["callback_id"] not in ids


async def test_the_queue_shows_the_callers_of_ones_scope_only(
    client, make_user, login, seed, sessions
):
    """Waiting now (no paging): a caller tied to a case of the district, one tied to a case
    next door, one tied to none yet (the city center's, like a case with no place)."""
    ours = await seed.waiting_call(_phone())
    theirs = await seed.waiting_call(_phone())
    unlinked = await seed.waiting_call(_phone())
    links = {ours: await _case(client, IN_SCOPE), theirs: await _case(client, OUT_OF_SCOPE)}
    made = [ours, theirs, unlinked]
    try:
        async with sessions() as session, session.begin():
            for sid, case_id in links.items():
                await session.execute(update(VoiceCall).where(VoiceCall.call_sid == sid)
                                      .values(case_id=case_id))
        for role, department in CENTER:
            district = await login(await make_user(role, department, DISTRICT))
            queue = await client.get("/api/v1/voice/queue", headers=district)
            assert queue.status_code == 200, queue.text
            waiting = {item["call_sid"] for item in queue.json()["items"]}
            assert ours in waiting and not {theirs, unlinked} & waiting
        await _refused(client, make_user, login, "/api/v1/voice/queue", NOT_THE_DESK)
    finally:  # this test's callers hang up: the other tests' queue is theirs
        async with sessions() as session, session.begin():
            await session.execute(update(VoiceCall).where(VoiceCall.call_sid.in_(made))
                                  .values(status="completed", enqueued_at=None))


async def test_who_is_not_the_desk_may_not_list_the_hotlines_records(client, make_user, login):
    for url in ("/api/v1/sms/threads", "/api/v1/voice/calls", "/api/v1/voice/callbacks",
                "/api/v1/voice/blocks"):
        await _refused(client, make_user, login, url, NOT_THE_DESK)

