"""The department scorecard against a seeded history whose answers are worked out by hand.

A database of its own (other tests' referrals would change "overdue now"), a fixed clock.
The history is written as the service writes it — referrals and their timeline events —
and the figures come through the timeline trigger, the SQL and the ranking rules.

March 2024, 湖东区 (990102):
  police office (A): r1 claimed in 20 min and acted in 60 (both on time); r2 claimed after
  6 h (late, 督办 at the deadline), first action late, completed; r3 never claimed (督办,
  then 挂牌督办; overdue now); r4 claimed in 10 min, returned as not the department's.
  education office (B): r5 claimed in 60 min, completed on time; a 督查 order opened by
  hand on its case on 16 March, due 20 March, still open (overdue now).
湖西区 (990103) police office (C): r7 claimed and acted on time.
February (the previous period): A had one referral (r6), claimed on time.
"""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from db.engine import transaction
from db.models import Office, Referral, SupervisionOrder
from dispatch.staff.auth import Principal
from dispatch.supervision.scorecard import scorecard
from tests.fixtures.referrals import referral_event, seed_referral
from tests.fixtures.sessions import own_sessions

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2024, 3, 1, tzinfo=TZ)
END = datetime(2024, 4, 1, tzinfo=TZ)
NOW = datetime(2024, 4, 10, 12, 0, tzinfo=TZ)

CITY = Principal(1, "city", "supervisor", None, "990100", "990100/")
EAST_POLICE = Principal(2, "ep", "supervisor", "police", "990102", "990100/990102/")
CITY_POLICE = Principal(3, "cp", "supervisor", "police", "990100", "990100/")
EAST_CENTER = Principal(4, "ec", "supervisor", None, "990102", "990100/990102/")


def t(day: str, clock: str, month: int = 3) -> datetime:
    h, m = map(int, clock.split(":"))
    return datetime(2024, month, int(day), h, m, tzinfo=TZ)


# name, department, office's place, created, claim due, action due, status, timeline events
# (event, when), return reason: the history of the module docstring.
HISTORY = [
    ("r1", "police", "990102", t("4", "10:00"), t("4", "10:30"), t("4", "12:00"), "in_progress",
     [("referral_claimed", t("4", "10:20")), ("referral_progress", t("4", "11:00"))]),
    ("r2", "police", "990102", t("5", "09:00"), t("5", "13:00"), t("6", "09:00"), "completed",
     [("escalated", t("5", "13:00")), ("referral_claimed", t("5", "15:00")),
      ("referral_progress", t("6", "10:00")), ("referral_completed", t("6", "11:00"))]),
    ("r3", "police", "990102", t("10", "08:00"), t("10", "08:30"), t("10", "10:00"), "queued",
     [("escalated", t("10", "08:30")), ("flagged", t("10", "09:00"))]),
    ("r4", "police", "990102", t("20", "12:00"), t("20", "12:30"), t("20", "14:00"), "returned",
     [("referral_claimed", t("20", "12:10")), ("referral_returned", t("20", "13:00"))],
     "不属于本部门职责"),
    ("r5", "education", "990102", t("15", "09:00"), t("16", "09:00"), t("18", "09:00"),
     "completed",
     [("referral_claimed", t("15", "10:00")), ("referral_completed", t("15", "16:00"))]),
    ("r6", "police", "990102", t("10", "09:00", 2), t("10", "09:30", 2), t("10", "11:00", 2),
     "completed", [("referral_claimed", t("10", "09:10", 2))]),
    ("r7", "police", "990103", t("12", "09:00"), t("12", "09:30"), t("12", "11:00"), "completed",
     [("referral_claimed", t("12", "09:05")), ("referral_completed", t("12", "10:00"))]),
]


@pytest.fixture(scope="module")
async def seeded(database_url):
    async with own_sessions(database_url) as sessions:
        async with transaction(sessions) as session:
            offices = {
                (o.department_code, o.jurisdiction_code): o.id
                for o in (await session.execute(select(Office))).scalars()
            }
            ids: dict[str, int] = {}

            async def referral(name, dept, place, created, claim_due, action_due, status, events,
                               reason=None):
                case_id, rid = await seed_referral(
                    session, department=dept, office_id=offices[(dept, place)], place=place,
                    case_place=place + "001", category="domestic_violence", created=created,
                    claim_due=claim_due, action_due=action_due, status=status, events=events,
                    return_reason=reason,
                )
                ids[name] = rid
                ids[name + "_case"] = case_id

            for row in HISTORY:
                await referral(*row)
            session.add(
                SupervisionOrder(
                    case_id=ids["r5_case"],
                    referral_id=ids["r5"],
                    department_code="education",
                    office_id=offices[("education", "990102")],
                    jurisdiction_code="990102",
                    status="open",
                    reason="整改",
                    due_at=t("20", "18:00"),
                    opened_by_label="test",
                    opened_at=t("16", "10:00"),
                    created_at=t("16", "10:00"),
                )
            )
        yield sessions, offices, ids


async def card(sessions, principal, by="office"):
    async with transaction(sessions) as session:
        return await scorecard(session, principal, START, END, by=by, now=NOW)


def by_office(result, offices, dept, place):
    return next(i for i in result.items if i["office_id"] == offices[(dept, place)])


async def test_the_office_figures_are_the_worked_answers(seeded):
    sessions, offices, _ = seeded
    result = await card(sessions, CITY)
    a = by_office(result, offices, "police", "990102")
    assert (a["received"], a["claimed"], a["claimed_on_time"], a["acted_on_time"]) == (4, 3, 2, 1)
    assert (a["claimed_on_time_rate"], a["acted_on_time_rate"]) == (0.5, 0.25)
    assert a["median_minutes_to_claim"] == 20.0
    assert a["p90_minutes_to_claim"] == 292.0  # 20 + 0.8 × (360 − 20)
    assert (a["median_minutes_to_action"], a["p90_minutes_to_action"]) == (780.0, 1356.0)
    assert (a["escalated"], a["flagged"], a["returned"], a["overdue"]) == (2, 1, 1, 1)
    assert a["return_reasons"] == [{"reason": "不属于本部门职责", "count": 1}]
    assert a["outcomes"] == {"in_progress": 1, "completed": 1, "queued": 1, "returned": 1}
    b = by_office(result, offices, "education", "990102")
    assert (b["received"], b["claimed_on_time"], b["acted_on_time"]) == (1, 1, 1)
    # The 督查 order opened by hand counts as 挂牌督办, and is overdue now.
    assert (b["flagged"], b["flagged_by_hand"], b["overdue"]) == (1, 1, 1)


async def test_trend_against_the_month_before_and_the_ranking(seeded):
    sessions, offices, _ = seeded
    result = await card(sessions, CITY)
    a = by_office(result, offices, "police", "990102")
    assert a["previous"]["received"] == 1
    assert a["trend"]["received"] == 3
    assert a["trend"]["claimed_on_time_rate"] == -0.5  # 50 % now, 100 % in February
    ranked = [(i["department"], i["jurisdiction"], i["rank"]) for i in result.items]
    # C: 40 + 60 = 100; B: 40 + 60 − 40 (flag) − 20 (overdue) = 40; A: 7.5.
    assert ranked == [("police", "990103", 1), ("education", "990102", 2), ("police", "990102", 3)]
    assert result.total["received"] == 6


async def test_a_department_supervisor_sees_only_their_department_in_their_place(seeded):
    sessions, offices, _ = seeded
    east = await card(sessions, EAST_POLICE)
    assert [i["office_id"] for i in east.items] == [offices[("police", "990102")]]
    city_police = await card(sessions, CITY_POLICE)
    assert {i["department"] for i in city_police.items} == {"police"}
    assert len(city_police.items) == 2
    district = await card(sessions, EAST_CENTER)
    assert {i["jurisdiction"] for i in district.items} == {"990102"}


async def test_per_department_medians_are_over_the_department_not_its_offices(seeded):
    sessions, _, _ = seeded
    result = await card(sessions, CITY, by="department")
    police = next(i for i in result.items if i["department"] == "police")
    assert police["office"] is None
    assert police["received"] == 5
    assert police["median_minutes_to_claim"] == 15.0  # of 5, 10, 20, 360


async def test_the_timeline_trigger_judges_a_claim_against_the_deadline_then(seeded):
    sessions, _, ids = seeded
    async with transaction(sessions) as session:
        r = await session.get(Referral, ids["r3"])
        session.add(referral_event(r, "referral_claimed", t("10", "09:30")))
        session.add(referral_event(r, "referral_claimed", t("10", "08:10")))
        await session.flush()
        from db.models import ReferralMeasure

        m = await session.get(ReferralMeasure, r.id, populate_existing=True)
        # The first claim is the one that counts (late), not a later one that looks better.
        assert (m.first_claimed_at, m.claimed_on_time) == (t("10", "09:30"), False)
        assert m.escalations == 1 and m.flagged_at == t("10", "09:00")
        await session.rollback()


async def test_the_pdf_of_a_city_with_many_offices_fits_its_pages(seeded):
    """A chart of every office would outgrow a page; it is kept to one, the table flows on."""
    from dispatch.supervision import exports

    sessions, _, _ = seeded
    result = await card(sessions, CITY)
    result.items = [dict(result.items[0], office=f"第{n}办理机构") for n in range(60)]
    pdf = exports.scorecard_pdf(result)
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page\n") >= 2
