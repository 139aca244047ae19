"""Cases for the retention tests: made through intake, then aged by moving their
timestamps back (the job runs at the real time, so other tests' fresh rows are never past
a period)."""

import secrets
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text

from db.engine import transaction
from db.models_children import CaseChild, Child, Guardian
from db.timeline import case_event
from workflows.cases.intake import NewReport, record_report

NOW = datetime.now(UTC)


async def case(sessions, state: str, ago: timedelta, *, closed_ago: timedelta | None = None,
                not_a_case: str | None = None) -> int:
    """A report through intake, put in `state` and aged: every row of it `ago` old."""
    async with transaction(sessions) as session:
        made = await record_report(session, NewReport(
            channel="web",
            external_id=f"t-{secrets.token_hex(8)}",
            reporter={"name": "周老师", "phone": "13800138011"},
            reporter_phone="+8613800138011",
            child={"name": "赵小红", "age": 7, "gender": "female"},
            categories=["guardianship_absent"],
            jurisdiction_code="990103001001",
            address="东湖路 8 号 3 单元",
            description=f"孩子长期一个人在家，无人照料。{secrets.token_hex(4)}",
        ))
    then = NOW - ago
    async with transaction(sessions) as session:
        await session.execute(
            text("UPDATE hcase SET state = :state, not_a_case = :nac, created_at = :then,"
                 " updated_at = :then WHERE id = :id"),
            {"state": state, "nac": not_a_case, "then": then, "id": made.case_id},
        )
        await session.execute(text("UPDATE report SET created_at = :then WHERE case_id = :id"),
                              {"then": then, "id": made.case_id})
        await session.execute(text("UPDATE case_event SET created_at = :then WHERE case_id = :id"),
                              {"then": then, "id": made.case_id})
        if closed_ago is not None:
            session.add(case_event(case_id=made.case_id, event="close", actor="test",
                                   from_state="following_up", to_state="closed",
                                   reason="帮扶完成，孩子已回到父母身边",
                                   created_at=NOW - closed_ago))
    return made.case_id


async def closed(sessions, years: int) -> int:
    """A case closed `years` ago, reported a year before."""
    return await case(sessions, "closed", timedelta(days=(years + 1) * 365),
                       closed_ago=timedelta(days=years * 365))


async def child(sessions, case_id: int, birth: date | None) -> int:
    async with transaction(sessions) as session:
        child = Child(name="赵小红", gender="female", birth_date=birth,
                      id_number="110101200001011234", address="东湖路 8 号",
                      school="东湖第一小学", jurisdiction_code="990103001001")
        session.add(child)
        await session.flush()
        session.add(Guardian(child_id=child.id, relation="母亲", name="钱芳",
                             phone="+8613900139000"))
        session.add(CaseChild(case_id=case_id, child_id=child.id, linked_by="test"))
    return child.id
