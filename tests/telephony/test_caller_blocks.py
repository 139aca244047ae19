"""Caller blocks are the center's decision, inside its scope: a department's supervisor (a
school official, say) can neither block a caller, nor list the blocks, nor lift one; a
district center's supervisor blocks the calls of its own cases and manages its own blocks;
a number typed in, and every block, are the city center's."""

import secrets

from tests.fixtures.reports import report

pytest_plugins = ("tests.fixtures.console",)

BLOCKS = "/api/v1/voice/blocks"
EAST, WEST = "990102001001", "990103001001"  # 湖东区 and the district next door


def _phone() -> str:
    return "+86139" + "".join(secrets.choice("0123456789") for _ in range(8))


async def _call_about_a_case(client, seed, jurisdiction: str) -> str:
    """A call from a fresh number, tied to a new case in `jurisdiction`: its call id."""
    case_id = (await client.post("/api/v1/reports", json=report(jurisdiction=jurisdiction))
               ).json()["case_id"]
    return (await seed.hotline_records(case_id, _phone()))["call_sid"]


def _block(call_sid: str) -> dict:
    return {"call_sid": call_sid, "hours": 2, "reason": "反复骚扰接线员"}


async def _listed(client, headers) -> set[int]:
    response = await client.get(BLOCKS, headers=headers)
    assert response.status_code == 200, response.text
    return {b["id"] for b in response.json()["items"]}


async def test_a_department_supervisor_can_neither_block_nor_list_nor_lift(
    client, seed, make_user, login
):
    east_call = await _call_about_a_case(client, seed, EAST)
    city = await login(await make_user("supervisor"))
    made = await client.post(BLOCKS, json=_block(east_call), headers=city)
    assert made.status_code == 201, made.text
    for department in ("education", "police"):
        school = await login(await make_user("supervisor", department, "990102"))
        other_call = await _call_about_a_case(client, seed, EAST)
        refused = await client.post(BLOCKS, json=_block(other_call), headers=school)
        assert refused.status_code == 403, refused.text
        assert (await client.get(BLOCKS, headers=school)).status_code == 403
        lift = await client.delete(f"{BLOCKS}/{made.json()['id']}", headers=school)
        assert lift.status_code == 403
    assert made.json()["id"] in await _listed(client, city)  # still in force


async def test_a_district_center_blocks_its_own_calls_and_manages_its_own_blocks(
    client, seed, make_user, login
):
    east_call = await _call_about_a_case(client, seed, EAST)
    west_call = await _call_about_a_case(client, seed, WEST)
    unlinked = await seed.waiting_call(_phone())  # tied to no case yet: the city's
    east = await login(await make_user("supervisor", None, "990102"))
    west = await login(await make_user("supervisor", "minor_protection_center", "990103"))
    city = await login(await make_user("supervisor"))

    # Another district's call, an unlinked one, a number typed in: not the district's.
    for body in (_block(west_call), _block(unlinked)):
        refused = await client.post(BLOCKS, json=body, headers=east)
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "call_not_found"
    typed = await client.post(
        BLOCKS, json={"phone": _phone()[3:], "hours": 1, "reason": "骚扰"}, headers=east
    )
    assert typed.status_code == 403 and typed.json()["error"]["code"] == "city_center_only"
    assert "市级" in typed.json()["error"]["message"]

    ours = (await client.post(BLOCKS, json=_block(east_call), headers=east)).json()["id"]
    theirs = (await client.post(BLOCKS, json=_block(west_call), headers=west)).json()["id"]
    citys = (await client.post(BLOCKS, json=_block(unlinked), headers=city)).json()["id"]
    assert {ours, theirs, citys} & await _listed(client, east) == {ours}
    assert {ours, theirs, citys} & await _listed(client, west) == {theirs}
    assert {ours, theirs, citys} <= await _listed(client, city)

    for block_id in (theirs, citys):
        hidden = await client.delete(f"{BLOCKS}/{block_id}", headers=east)
        assert hidden.status_code == 404, hidden.text
    assert {theirs, citys} <= await _listed(client, city)  # neither was lifted
    lifted = await client.delete(f"{BLOCKS}/{ours}", headers=east)
    assert lifted.status_code == 200 and lifted.json()["active"] is False
    # The city center lifts any block.
    assert (await client.delete(f"{BLOCKS}/{theirs}", headers=city)).json()["active"] is False
