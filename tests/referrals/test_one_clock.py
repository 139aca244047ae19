"""One clock: the operations read domain time from `db.clock`, so a test that holds the clock
still (or a replay) sees every moment an operation records come from it, not from the wall."""

from db.models import Case, Referral
from tests.fixtures.reports import report

pytest_plugins = ("tests.fixtures.twilio",)


async def test_a_claim_and_a_case_s_change_are_stamped_by_the_one_clock(
    client, make_user, login, pump, sessions, frozen_clock
):
    caseworker = await login(await make_user("caseworker"))
    police = await login(await make_user("liaison", "police", "990102001"))
    case_id = (await client.post("/api/v1/reports", json=report())).json()["case_id"]
    await pump()

    frozen_clock.advance(hours=3)  # far from the wall clock, and held there
    mine = (await client.get(f"/api/v1/referrals?status=queued&case_id={case_id}",
                             headers=police)).json()["items"]
    referral_id = next(r["id"] for r in mine if r["department"] == "police")
    claimed = await client.post(f"/api/v1/referrals/{referral_id}/claim", headers=police)
    assert claimed.status_code == 200
    assessed = await client.post(f"/api/v1/cases/{case_id}/events", json={"event": "assess"},
                                 headers=caseworker)
    assert assessed.status_code == 200

    async with sessions() as session:
        referral = await session.get(Referral, referral_id)
        assert referral.claimed_at == frozen_clock.now()
        assert (await session.get(Case, case_id)).updated_at == frozen_clock.now()
