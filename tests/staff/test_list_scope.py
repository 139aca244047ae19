"""Scope on the list endpoints, for every role that may list: a case in scope is present,
one just out of scope (the neighbouring district, the next department) is absent, also past
the first page. The lists hold other tests' rows too, so the assertions are about the rows
made here only."""

import asyncio

import pytest

from tests.fixtures.reports import report

IN_SCOPE = "990102001001"  # 湖东区幸福街道幸福里社区
OUT_OF_SCOPE = "990103001001"  # 湖滨区, the district next door


async def _cases(client, pump) -> tuple[list[int], int]:
    """Three cases in 湖东区 (the oldest will sit past the first page) and, newest, one in
    湖滨区, all routed."""
    async def filed(jurisdiction: str) -> int:
        # Case ids order by their millisecond (0035): one apart, each is newer than the last.
        await asyncio.sleep(0.002)
        return (await client.post("/api/v1/reports", json=report(jurisdiction=jurisdiction))
                ).json()["case_id"]

    inside = [await filed(IN_SCOPE) for _ in range(3)]
    outside = await filed(OUT_OF_SCOPE)
    await pump()
    return inside, outside


async def _all_pages(client, headers, newest: int, oldest: int) -> list[int]:
    """Every case id from just above `newest` down to below `oldest`, one per page."""
    seen: list[int] = []
    before: int | None = newest + 1
    while before is not None:
        page = await client.get("/api/v1/cases", headers=headers,
                                params={"limit": 1, "before_id": before})
        assert page.status_code == 200, page.text
        body = page.json()
        seen += [item["id"] for item in body["items"]]
        before = body["next_before_id"]
        if seen and seen[-1] < oldest:  # below what this test made
            break
    return seen


# (role, department, jurisdiction) of staff whose lists stop at 湖东区 (990102).
SCOPED_STAFF = [
    ("operator", None, "990102"),
    ("caseworker", None, "990102"),
    ("supervisor", None, "990102"),
    ("liaison", "police", "990102001"),
]


@pytest.mark.parametrize("role,department,jurisdiction", SCOPED_STAFF)
async def test_case_list_pages_show_the_scope_and_nothing_beside(
    client, make_user, login, pump, role, department, jurisdiction
):
    inside, outside = await _cases(client, pump)
    headers = await login(await make_user(role, department, jurisdiction))
    seen = await _all_pages(client, headers, outside, inside[0])
    assert set(inside) <= set(seen), "a case in scope is missing"
    assert seen.index(inside[0]) >= 2  # found past the first pages
    assert outside not in seen
    # The same lists for whoever sits over the other district see it, and not ours.
    other = await login(await make_user(role, department, OUT_OF_SCOPE[:6] if department is None
                                        else OUT_OF_SCOPE[:9]))
    theirs = await _all_pages(client, other, outside, inside[0])
    assert outside in theirs and not set(inside) & set(theirs)


@pytest.mark.parametrize("role,department,jurisdiction", SCOPED_STAFF)
async def test_referral_list_shows_the_scope_and_nothing_beside(
    client, make_user, login, pump, role, department, jurisdiction
):
    inside, outside = await _cases(client, pump)
    headers = await login(await make_user(role, department, jurisdiction))
    for case_id in inside:
        listed = await client.get("/api/v1/referrals", headers=headers,
                                  params={"case_id": case_id, "limit": 200})
        assert listed.status_code == 200
        police = [r for r in listed.json()["items"] if r["department"] == "police"]
        assert police and all(r["case_id"] == case_id for r in police)
    foreign = await client.get("/api/v1/referrals", headers=headers,
                               params={"case_id": outside, "limit": 200})
    assert foreign.status_code == 200 and foreign.json()["items"] == []
    # A liaison of the next department sees none of these police referrals.
    if role == "liaison":
        education = await login(await make_user("liaison", "education", jurisdiction))
        for case_id in inside:
            listed = await client.get("/api/v1/referrals", headers=education,
                                      params={"case_id": case_id})
            assert all(r["department"] == "education" for r in listed.json()["items"])
