"""Who sees which case and referral, rule by rule, on real PostgreSQL: for each kind of staff
member the rows in scope are all present and the rows just outside it are absent. Rows are
written straight into the tables (no intake, no routing), so this is the scope filter alone;
the list endpoints' own tests go through the API. Only the rows made here are looked at,
and they are deleted afterwards."""

from dataclasses import dataclass

import pytest
from sqlalchemy import delete, select

from db.engine import make_engine, make_sessionmaker, transaction
from db.models import Case, CaseEvent, Referral
from db.timeline import case_event
from dispatch.staff.auth import Principal
from dispatch.staff.scope import (
    case_event_filter,
    case_filter,
    is_root,
    referral_filter,
    sees_reporter,
)

ROOT = "990100/"
EAST = "990100/990102/"  # 湖东区
WEST = "990100/990103/"  # 湖西区
EAST_STREET = "990100/990102/990102001/"  # 幸福街道


@dataclass
class Rows:
    cases: dict[str, int]
    referrals: dict[str, int]


@pytest.fixture(scope="module")
async def rows(database_url):
    """Cases at the city, a district, a community under a street, another district and none;
    referrals to the police and education offices across them."""
    engine = make_engine(database_url, pool_size=1)
    sessions = make_sessionmaker(engine)
    places = {"city": "990100", "east": "990102", "east_community": "990102001001",
              "west": "990103", "nowhere": None}
    cases = {name: Case(state="reported", jurisdiction_code=code) for name, code in places.items()}
    async with transaction(sessions) as session:
        session.add_all(cases.values())
        await session.flush()
        referrals = {
            "police_east_street": Referral(case_id=cases["east_community"].id,
                                           department_code="police",
                                           jurisdiction_code="990102001"),
            "police_west": Referral(case_id=cases["west"].id, department_code="police",
                                    jurisdiction_code="990103"),
            "education_east": Referral(case_id=cases["east"].id, department_code="education",
                                       jurisdiction_code="990102"),
            "police_nowhere": Referral(case_id=cases["nowhere"].id, department_code="police",
                                       jurisdiction_code=None),
            "police_city": Referral(case_id=cases["city"].id, department_code="police",
                                    jurisdiction_code="990100"),
        }
        for referral in referrals.values():
            referral.role, referral.status = "lead", "queued"
        session.add_all(referrals.values())
        await session.flush()
        made = Rows({k: c.id for k, c in cases.items()}, {k: r.id for k, r in referrals.items()})
    yield made, sessions
    async with transaction(sessions) as session:  # leave the shared database as it was
        await session.execute(delete(Referral).where(Referral.id.in_(made.referrals.values())))
        await session.execute(delete(Case).where(Case.id.in_(made.cases.values())))
    await engine.dispose()


def staff(role: str, department: str | None, path: str | None) -> Principal:
    jurisdiction = path.rstrip("/").rsplit("/", 1)[-1] if path else None
    return Principal(1, f"{role}-test", role, department, jurisdiction, path)


async def seen(rows, principal: Principal) -> tuple[set[str], set[str]]:
    made, sessions = rows
    async with sessions() as session:
        case_ids = set(
            (await session.execute(select(Case.id).where(
                case_filter(principal), Case.id.in_(made.cases.values())
            ))).scalars()
        )
        referral_ids = set(
            (await session.execute(select(Referral.id).where(
                referral_filter(principal), Referral.id.in_(made.referrals.values())
            ))).scalars()
        )
    return ({k for k, v in made.cases.items() if v in case_ids},
            {k for k, v in made.referrals.items() if v in referral_ids})


EVERY_CASE = {"city", "east", "east_community", "west", "nowhere"}
EVERY_REFERRAL = {"police_east_street", "police_west", "education_east", "police_nowhere",
                  "police_city"}


@pytest.mark.parametrize("role", ["operator", "caseworker", "supervisor"])
@pytest.mark.parametrize("department", [None, "minor_protection_center"])
async def test_the_city_center_sees_every_case_even_one_without_a_place_yet(
    rows, role, department
):
    assert await seen(rows, staff(role, department, ROOT)) == (EVERY_CASE, EVERY_REFERRAL)


async def test_a_district_center_sees_its_subtree_and_nothing_else(rows):
    cases, referrals = await seen(rows, staff("caseworker", "minor_protection_center", EAST))
    assert cases == {"east", "east_community"}
    assert referrals == {"police_east_street", "education_east"}
    assert await seen(rows, staff("supervisor", None, WEST)) == ({"west"}, {"police_west"})


async def test_a_street_center_is_not_the_root_and_does_not_see_unplaced_cases(rows):
    assert await seen(rows, staff("operator", None, EAST_STREET)) == (
        {"east_community"}, {"police_east_street"})


async def test_a_liaison_sees_own_department_referrals_in_the_subtree_and_their_cases(rows):
    assert await seen(rows, staff("liaison", "police", EAST)) == (
        {"east_community"}, {"police_east_street"})
    # At the city: every police referral with an office's place, never the unplaced one.
    assert await seen(rows, staff("liaison", "police", ROOT)) == (
        {"east_community", "west", "city"}, {"police_east_street", "police_west", "police_city"})
    assert await seen(rows, staff("liaison", "education", ROOT)) == ({"east"}, {"education_east"})
    assert await seen(rows, staff("liaison", "education", WEST)) == (set(), set())


async def test_a_department_supervisor_is_department_staff_not_the_center(rows):
    assert await seen(rows, staff("supervisor", "police", WEST)) == ({"west"}, {"police_west"})
    assert await seen(rows, staff("supervisor", "police", ROOT)) == (
        {"east_community", "west", "city"}, {"police_east_street", "police_west", "police_city"})


@pytest.mark.parametrize(
    "principal",
    [
        staff("admin", None, ROOT),  # manages accounts, sees no case data
        staff("admin", "minor_protection_center", ROOT),
        staff("caseworker", None, None),  # no jurisdiction: no scope at all
        staff("liaison", "police", None),
        staff("liaison", None, ROOT),  # a liaison of no department
        staff("liaison", "police", ""),  # an empty path is no scope, not everything
        staff("caseworker", None, ""),
        staff("operator", "police", ROOT),  # a center role in a department: not the center
        staff("liaison", "police", "9901_0/"),  # a path is matched literally, not as a pattern
        staff("caseworker", None, "9901%/990102/"),
    ],
    ids=lambda p: f"{p.role}-{p.department}-{p.scope_path}",
)
async def test_default_deny(rows, principal):
    assert await seen(rows, principal) == (set(), set())


def test_only_the_city_is_the_root():
    assert is_root(staff("caseworker", None, ROOT))
    assert not is_root(staff("caseworker", None, EAST))
    assert not is_root(staff("caseworker", None, None))
    assert not is_root(staff("caseworker", None, ""))


@pytest.mark.parametrize(
    ("principal", "sees"),
    [
        (staff("operator", None, ROOT), True),
        (staff("caseworker", "minor_protection_center", EAST), True),
        (staff("supervisor", None, WEST), True),
        (staff("liaison", "police", EAST), True),  # police: mandatory-reporting follow-up
        (staff("supervisor", "police", ROOT), True),
        (staff("liaison", "education", ROOT), False),
        (staff("supervisor", "education", ROOT), False),
        (staff("operator", "police", ROOT), False),
        (staff("admin", None, ROOT), False),
    ],
    ids=lambda v: f"{v.role}-{v.department}" if isinstance(v, Principal) else str(v),
)
def test_the_reporter_is_shown_to_the_center_and_the_police_only(principal, sees):
    assert sees_reporter(principal) is sees


# A referral's status → whether its department still sees the case behind it.
THROUGH_REFERRAL = {
    "queued": True,
    "claimed": True,
    "in_progress": True,
    "completed": True,  # the department did the work: it keeps reading the case
    "returned": False,
    "cancelled": False,
    "withdrawn": False,
}


async def test_department_staff_see_a_case_only_while_their_referral_is_live(database_url):
    engine = make_engine(database_url, pool_size=1)
    sessions = make_sessionmaker(engine)
    async with transaction(sessions) as session:
        cases = {status: Case(state="handling", jurisdiction_code="990102001001")
                 for status in THROUGH_REFERRAL}
        session.add_all(cases.values())
        await session.flush()
        referrals = [
            Referral(case_id=case.id, department_code="police", jurisdiction_code="990102001",
                     role="lead", status=status)
            for status, case in cases.items()
        ]
        session.add_all(referrals)
    try:
        for principal in (staff("liaison", "police", EAST), staff("supervisor", "police", ROOT)):
            async with sessions() as session:
                visible = set((await session.execute(select(Case.id).where(
                    case_filter(principal), Case.id.in_([c.id for c in cases.values()])
                ))).scalars())
                listed = set((await session.execute(select(Referral.id).where(
                    referral_filter(principal), Referral.id.in_([r.id for r in referrals])
                ))).scalars())
            assert {s for s, c in cases.items() if c.id in visible} == {
                s for s, sees in THROUGH_REFERRAL.items() if sees
            }, principal.role
            # Their own rows stay in their referral list, whatever became of them.
            assert listed == {r.id for r in referrals}
        # The center's view is not the department's: it sees every one of them.
        async with sessions() as session:
            center = set((await session.execute(select(Case.id).where(
                case_filter(staff("caseworker", None, EAST)),
                Case.id.in_([c.id for c in cases.values()]),
            ))).scalars())
        assert center == {c.id for c in cases.values()}
    finally:
        async with transaction(sessions) as session:
            referral_ids = [r.id for r in referrals]
            await session.execute(delete(Referral).where(Referral.id.in_(referral_ids)))
            await session.execute(delete(Case).where(Case.id.in_([c.id for c in cases.values()])))
        await engine.dispose()


async def test_department_staff_read_their_own_shares_entries_on_the_timeline(database_url):
    """The case's own entries and the reader's department's; another department's entries
    (named by department, by referral, or both) to the center only."""
    engine = make_engine(database_url, pool_size=1)
    sessions = make_sessionmaker(engine)
    async with transaction(sessions) as session:
        case = Case(state="handling", jurisdiction_code="990102001001")
        session.add(case)
        await session.flush()
        police = Referral(case_id=case.id, department_code="police",
                          jurisdiction_code="990102001", role="lead", status="queued")
        education = Referral(case_id=case.id, department_code="education",
                             jurisdiction_code="990102", role="support", status="queued")
        session.add_all([police, education])
        await session.flush()
        data = {
            "own": None,
            "police": {"referral_id": police.id, "department": "police"},
            "education": {"referral_id": education.id, "department": "education"},
            "education_order": {"referral_id": None, "department": "education"},
            "education_claim": {"referral_id": education.id},
        }
        events = {name: case_event(case_id=case.id, event=name, actor="test", data=given)
                  for name, given in data.items()}
        session.add_all(events.values())
        await session.flush()
        ids = {name: e.id for name, e in events.items()}

    async def read(principal: Principal) -> set[str]:
        async with sessions() as session:
            shown = set((await session.execute(select(CaseEvent.id).where(
                CaseEvent.id.in_(ids.values()), case_event_filter(principal)))).scalars())
        return {name for name, i in ids.items() if i in shown}

    try:
        assert await read(staff("liaison", "police", EAST)) == {"own", "police"}
        assert await read(staff("supervisor", "police", EAST)) == {"own", "police"}
        assert await read(staff("liaison", "education", EAST)) == {
            "own", "education", "education_order", "education_claim"}
        # Police next door: the case's own entries, no police share of theirs here.
        assert await read(staff("liaison", "police", WEST)) == {"own"}
        for center in (staff("caseworker", None, EAST), staff("supervisor", None, ROOT),
                       staff("child_director", None, EAST_STREET)):
            assert await read(center) == set(data)
        assert await read(staff("liaison", None, EAST)) == set()
    finally:
        async with transaction(sessions) as session:
            await session.execute(delete(CaseEvent).where(CaseEvent.id.in_(ids.values())))
            await session.execute(delete(Referral).where(Referral.case_id == case.id))
            await session.execute(delete(Case).where(Case.id == case.id))
        await engine.dispose()
