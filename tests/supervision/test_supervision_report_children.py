"""The periodic report's age bands and sexes come from the case's plain `child_age` and
`child_sex` (migration 0036), kept by intake and by the case's correction: the figures are
those of opening every case's first sealed child, and no child is opened to count them.

A database of its own (the migration is run down and up again on it): cases through intake
with children of every shape (age a number, digits, words, out of every band; gender
known, unknown, odd, missing; no child), later reports that say otherwise (only the first
report counts), a case with no report at all, and cases out of the period.
"""

import asyncio
import secrets
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from sqlalchemy import insert, select, update

from db import crypto
from db.engine import transaction
from db.models import Case, Jurisdiction, Report
from dispatch.ops import schema
from dispatch.supervision import reports
from tests.fixtures.sessions import own_sessions
from workflows import supervision as rules
from workflows.cases.intake import NewReport, record_report
from workflows.supervision import parse_period

TZ = ZoneInfo("Asia/Shanghai")
PERIOD = "2024Q2"
CHILDREN = [
    None,
    {},
    {"name": "小明", "age": 9, "gender": "male"},
    {"age": 0, "gender": "female"},
    {"age": 2},
    {"age": 17, "gender": "unknown"},
    {"age": "13", "gender": "female"},
    {"age": "十来岁", "gender": "male"},
    {"age": 25, "gender": "女"},
    {"age": -1},
    {"gender": "female"},
    {"name": "王小红"},
]


def _breakdown(figures: dict, title: str) -> Counter:
    rows = next(b for b in figures["breakdowns"] if b["title"] == title)["rows"]
    return Counter({r["label"]: r["count"] for r in rows})


async def _intake(session, child, *, case_id=None, place="990102001001") -> int:
    result = await record_report(
        session,
        NewReport(
            channel="webform",
            external_id=f"RC{secrets.token_hex(8)}",
            description="孩子长期无人照料",
            categories=["guardianship_absent"],
            jurisdiction_code=place,
            child=child,
        ),
        case_id=case_id,
    )
    return result.case_id


@pytest.fixture(scope="module")
async def seeded(own_database):
    async with own_sessions(own_database) as sessions:
        first = datetime(2024, 4, 1, tzinfo=TZ)
        async with transaction(sessions) as session:
            for n in range(60):
                case_id = await _intake(
                    session,
                    CHILDREN[n % len(CHILDREN)],
                    place=["990102001001", "990102", "990103001001"][n % 3],
                )
                if n % 4 == 0:  # a later report says otherwise: only the first one counts
                    await _intake(session, {"age": 4, "gender": "male"}, case_id=case_id)
                at = first + timedelta(days=n * 2 - 10)  # some before the quarter
                await session.execute(update(Case).where(Case.id == case_id).values(created_at=at))
            await session.execute(  # a case with no report at all
                insert(Case).values(
                    state="handling", categories=["other"], jurisdiction_code="990102",
                    created_at=first + timedelta(days=3),
                )
            )
        yield sessions


async def _opened(session, place: Jurisdiction) -> tuple[Counter, Counter]:
    """Age bands and sexes as the report counted them before 0036: every case's first
    sealed child opened in Python."""
    principal = reports._as_district(place)
    span = reports.stats_period(parse_period(PERIOD))
    ages, sexes = Counter(), Counter()
    for row in await session.execute(reports._extra_statement(principal, span)):
        for token in row.children:
            child = (crypto.open_json(token) if token else None) or {}
            ages[rules.age_band(child.get("age"))] += 1
            sexes[reports.GENDERS.get(child.get("gender") or "", "未填写")] += 1
    return ages, sexes


async def _compare(sessions, monkeypatch) -> int:
    counted = 0
    for code in ("990100", "990102", "990103"):
        async with transaction(sessions) as session:
            place = await session.get(Jurisdiction, code)
            ages, sexes = await _opened(session, place)
        with monkeypatch.context() as m:
            def refuse(token):
                raise AssertionError("the report opened a sealed child")

            m.setattr(crypto, "decrypt", refuse)
            async with transaction(sessions) as session:
                place = await session.get(Jurisdiction, code)
                figures = await reports.report_figures(session, place, parse_period(PERIOD))
        assert _breakdown(figures, "年龄段") == ages, code
        assert _breakdown(figures, "性别") == sexes, code
        assert sum(ages.values()) == figures["sets"]["received"], code
        counted += sum(ages.values())
    return counted


async def test_age_bands_and_sexes_are_the_sealed_childrens_and_none_is_opened(
    seeded, monkeypatch
):
    assert await _compare(seeded, monkeypatch) > 40


async def test_the_migration_fills_each_case_from_its_first_report(
    seeded, own_database, monkeypatch
):
    """Run down and up again, 0036 fills the columns from the sealed first reports alone."""
    cfg = schema.alembic_config(own_database)
    await asyncio.to_thread(command.downgrade, cfg, "0035")  # alembic's env runs its own loop
    await asyncio.to_thread(command.upgrade, cfg, "head")
    async with transaction(seeded) as session:
        kept = {
            case_id: (age, sex)
            for case_id, age, sex in await session.execute(
                select(Case.id, Case.child_age, Case.child_sex)
            )
        }
        first: dict[int, dict | None] = {}
        for case_id, child in await session.execute(
            select(Report.case_id, Report.child).order_by(Report.id)
        ):
            first.setdefault(case_id, child)
    assert kept == {
        case_id: rules.child_figures(first.get(case_id)) for case_id in kept
    }
    assert {sex for _, sex in kept.values()} == {None, "male", "female", "unknown"}
    assert await _compare(seeded, monkeypatch) > 40


async def test_a_correction_of_the_child_moves_the_report_figures(
    client, sessions, make_user, login
):
    async with sessions() as session, session.begin():
        case_id = await _intake(session, {"name": "小明", "age": 9, "gender": "male"})
        await session.execute(
            update(Case)
            .where(Case.id == case_id)
            .values(created_at=datetime(2024, 8, 10, 11, tzinfo=TZ))
        )

    async def figures() -> tuple[Counter, Counter]:
        async with sessions() as session, session.begin():
            place = await session.get(Jurisdiction, "990102")
            got = await reports.report_figures(session, place, parse_period("2024Q3"))
        return _breakdown(got, "年龄段"), _breakdown(got, "性别")

    assert await figures() == (Counter({"6-11岁": 1}), Counter({"男": 1}))
    operator = await login(await make_user("operator"))
    answer = await client.patch(
        f"/api/v1/cases/{case_id}",
        json={"child": {"age": 13, "gender": "female"}, "reason": "核实后孩子13岁，是女孩"},
        headers=operator,
    )
    assert answer.status_code == 200, answer.text
    assert await figures() == (Counter({"12-14岁": 1}), Counter({"女": 1}))
    cleared = await client.patch(
        f"/api/v1/cases/{case_id}",
        json={"child": {"age": None}, "reason": "年龄不确定"},
        headers=operator,
    )
    assert cleared.status_code == 200, cleared.text
    assert await figures() == (Counter({"未填写": 1}), Counter({"女": 1}))
