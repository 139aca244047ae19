"""The periodic report's figures from one read of each case's first report and referrals
are the figures of the earlier statement (a subquery per figure), row for row.

A database of its own: cases in and out of the period and the district, merged and
invalid ones, with no report, one or several (the first one's child counts: age, sex or
neither), needs or none, risk levels, an "other" category, and referrals none, delivered,
completed or neither. The earlier statement is kept here as the reference.
"""

import json
import random
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Boolean, and_, cast, exists, func, insert, literal, not_, select
from sqlalchemy.dialects.postgresql import ARRAY

from db import crypto
from db.engine import transaction
from db.models import Case, Jurisdiction, Referral, Report
from dispatch.console.periods import Period
from dispatch.staff.auth import Principal
from dispatch.staff.scope import case_filter
from dispatch.supervision import reports
from tests.fixtures.sessions import own_sessions
from workflows.supervision import parse_period

TZ = ZoneInfo("Asia/Shanghai")
PERIOD = "2024Q1"
PLACES = ["990102", "990102001", "990103", None]


def _earlier_statement(principal: Principal, period: Period):
    """The report's statement before one lateral per case replaced its subqueries."""
    first_child = (
        select(Report.child).where(Report.case_id == Case.id).order_by(Report.id).limit(1)
    ).scalar_subquery()
    delivered = exists(
        select(Referral.id).where(Referral.case_id == Case.id, Referral.delivered_at.is_not(None))
    )
    completed = exists(
        select(Referral.id).where(Referral.case_id == Case.id, Referral.status == "completed")
    )
    needs = func.coalesce(Case.assessment["needs"], cast(literal("[]"), Case.assessment.type))
    classified = and_(
        Case.risk_level.is_not(None),
        not_(Case.categories.contained_by(cast(["other"], ARRAY(Case.categories.type.item_type)))),
    )
    inner = (
        select(
            first_child.label("child"),  # ciphertext: age and sex are read in Python
            Case.state.label("state"),
            needs.label("needs"),
            cast(classified, Boolean).label("classified"),
            Case.risk_level.is_not(None).label("assessed"),
            delivered.label("intervened"),
            completed.label("helped"),
        )
        .where(
            Case.created_at >= period.start,
            Case.created_at < period.end,
            Case.state.not_in(("merged", "invalid")),
            case_filter(principal),
        )
        .subquery()
    )
    columns = [inner.c[name] for name in inner.c.keys()]
    return select(*columns, func.count()).group_by(*columns)


@pytest.fixture(scope="module")
async def seeded(own_database):
    async with own_sessions(own_database) as sessions:
        rng = random.Random(1717)
        first = datetime(2023, 12, 20, tzinfo=TZ)
        async with transaction(sessions) as session:
            for n in range(300):
                needs = rng.choice([None, [], ["education"], ["education", "medical"], [3]])
                case_id = await session.scalar(
                    insert(Case)
                    .values(
                        state=rng.choice(["handling", "closed", "merged", "invalid", "new"]),
                        jurisdiction_code=rng.choice(PLACES),
                        categories=rng.choice([["left_behind"], ["other"], ["other", "abuse"]]),
                        risk_level=rng.choice([None, "red", "yellow"]),
                        assessment=None if needs is None else {"needs": needs},
                        created_at=first + timedelta(hours=rng.randrange(0, 24 * 120)),
                    )
                    .returning(Case.id)
                )
                for k in range(rng.choice([0, 1, 1, 2, 3])):
                    child = rng.choice(
                        [{}, {"age": rng.randrange(0, 18)}, {"age": 9, "gender": "female"}]
                    )
                    if k == 0 and rng.random() < 0.5:
                        child["gender"] = rng.choice(["male", "female", "unknown"])
                    session.add(
                        Report(
                            channel=rng.choice(["webform", "sms", "voice"]),
                            external_id=f"rf-{n}-{k}",
                            receipt_code=f"RF{n:04d}{k}",
                            case_id=case_id,
                            description="测试",
                            child=child,
                        )
                    )
                departments = rng.sample(
                    ["police", "education", "civil_affairs"], rng.choice([0, 0, 1, 2])
                )
                for department in departments:  # one live referral per department and case
                    status = rng.choice(["queued", "claimed", "completed", "returned"])
                    session.add(
                        Referral(
                            case_id=case_id,
                            department_code=department,
                            role="lead",
                            status=status,
                            delivered_at=None if rng.random() < 0.4 else first,
                        )
                    )
                await session.flush()
        yield sessions


def _rows(result) -> Counter:
    """{combination: cases}; the needs (JSON) as text so a combination is a key. Summed: the
    earlier statement grouped by the sealed child, so equal children come in rows of their
    own."""
    rows: Counter = Counter()
    for r in result:
        key = tuple(json.dumps(v, sort_keys=True) if isinstance(v, list | dict) else v
                    for v in r[:-1])
        rows[key] += r[-1]
    return rows


def _per_case(result) -> Counter:
    """The statement's rows (each with its cases' sealed children) as `_rows` gives the
    earlier statement's: {(child, the rest): cases}."""
    rows: Counter = Counter()
    for r in result:
        rest = tuple(
            json.dumps(v, sort_keys=True) if isinstance(v, list | dict) else v for v in r[:-2]
        )
        for token in r.children:
            child = crypto.open_json(token) if token else None
            rows[(json.dumps(child, sort_keys=True) if child is not None else None, *rest)] += 1
    return rows


async def test_the_report_figures_are_the_earlier_statements(seeded):
    sessions = seeded
    span = reports.stats_period(parse_period(PERIOD))
    compared = 0
    async with transaction(sessions) as session:
        for code in ("990100", "990102", "990103"):
            place = await session.get(Jurisdiction, code)
            principal = reports._as_district(place)
            now = _per_case(await session.execute(reports._extra_statement(principal, span)))
            before = _rows(await session.execute(_earlier_statement(principal, span)))
            assert now == before, code
            compared += sum(before.values())
    assert compared > 100
