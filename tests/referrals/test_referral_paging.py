"""The referral list pages past its limit: most urgent first (claim deadline, none last,
then id), each page after the last one shown, nothing shown twice or skipped."""

from datetime import datetime

from tests.fixtures.reports import report


def _key(item: dict) -> tuple:
    due = item["claim_due_at"]
    return (due is None, datetime.fromisoformat(due) if due else datetime.min, item["id"])


async def test_paging_through_every_referral_in_scope(client, make_user, login, pump):
    made = [(await client.post("/api/v1/reports", json=report())).json() for _ in range(3)]
    await pump()
    supervisor = await login(await make_user("supervisor", jurisdiction="990100"))
    seen: list[dict] = []
    after = None
    for _ in range(1000):  # a deadline for a loop that never ends, not a size
        params = {"limit": 4, **({"after": after} if after else {})}
        page = await client.get("/api/v1/referrals", params=params, headers=supervisor)
        assert page.status_code == 200, page.text
        body = page.json()
        seen += body["items"]
        after = body["next_after"]
        if after is None:
            break
    assert after is None and len(seen) > 2 * 4  # several pages
    ids = [i["id"] for i in seen]
    assert len(ids) == len(set(ids))
    assert [_key(i) for i in seen] == sorted(_key(i) for i in seen)
    assert {m["case_id"] for m in made} <= {i["case_id"] for i in seen}

    for bad_cursor in ("yesterday", "2026-12-01T08:00:00~5", "-~99999999999999999999"):
        bad = await client.get("/api/v1/referrals", params={"after": bad_cursor},
                               headers=supervisor)
        assert bad.status_code == 422 and "next_after" in bad.json()["error"]["message"]
