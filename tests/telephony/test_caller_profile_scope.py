"""The caller's profile counts only what its reader may see: a district's operator learns
how often the number called and texted about the district's cases, not about the cases of
the district next door (the counts were of every call and text of the number)."""

import secrets

from tests.fixtures.reports import report

pytest_plugins = ("tests.fixtures.console",)

EAST, WEST = "990102001001", "990103001001"  # 湖东区 and the district next door


async def _case(client, jurisdiction: str) -> int:
    return (await client.post("/api/v1/reports", json=report(jurisdiction=jurisdiction))
            ).json()["case_id"]


async def test_the_caller_profile_counts_calls_and_texts_in_scope_only(
    client, seed, make_user, login
):
    phone = "+86139" + "".join(secrets.choice("0123456789") for _ in range(8))
    east = await seed.hotline_records(await _case(client, EAST), phone)
    await seed.hotline_records(await _case(client, WEST), phone)  # a call and a text
    await seed.hotline_records(await _case(client, WEST), phone)  # and again

    district = await login(await make_user("operator", None, "990102"))
    url = f"/api/v1/voice/calls/{east['call_sid']}/caller"
    mine = await client.get(url, headers=district)
    assert mine.status_code == 200, mine.text
    assert (mine.json()["calls"], mine.json()["sms_threads"]) == (1, 1)

    city = await login(await make_user("operator"))
    everything = (await client.get(url, headers=city)).json()
    assert (everything["calls"], everything["sms_threads"]) == (3, 3)
