"""The intake's statements: the hot path, on asyncpg directly inside the session's
transaction (measured: `bench/bench_intake.py`), so a report, its case, the first timeline
event, the audit row and the outbox row are one statement and one round trip.

The values come as `$1…$18` in the order `workflows.cases.intake` builds them; each
statement's own values follow.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from db.timeline import insert_events


@dataclass(frozen=True)
class Twin:
    """A report already stored for the same key: what a retry is answered with."""

    report_id: int
    case_id: int
    receipt_code: str
    # Found by its content alone (a burst's earlier copy), not as the same submission.
    same_content_only: bool = False


async def locked_twin(
    session: AsyncSession,
    *,
    key: str,
    channel: str,
    external_id: str | None,
    fingerprint: str,
    window_seconds: int,
    content_fingerprint: str | None = None,
    hold_seconds: int = 0,
) -> Twin | None:
    """Take the report's advisory lock (concurrent twins wait for each other), then find
    the twin already stored, if any: by (channel, external id), else by fingerprint within
    the window; with `content_fingerprint`, else the first report of the channel with the
    same content within `hold_seconds` (`same_content_only`).

    The lock goes through SQLAlchemy on purpose: its asyncpg adapter sends BEGIN only with
    its own first statement, so statements sent on the raw connection before that would
    each run on their own, and a transaction-scoped lock would be let go at once.
    """
    await session.execute(_LOCK, {"key": key})
    conn = await _driver_connection(session)
    if external_id:
        found = await conn.fetchrow(_BY_EXTERNAL_ID, channel, external_id)
    elif content_fingerprint:
        found = await conn.fetchrow(
            _BY_CONTENT, fingerprint, window_seconds, content_fingerprint, hold_seconds, channel
        )
        if found:
            return Twin(found["id"], found["case_id"], found["receipt_code"], not found["same"])
    else:
        found = await conn.fetchrow(_BY_FINGERPRINT, fingerprint, window_seconds)
    return Twin(found["id"], found["case_id"], found["receipt_code"]) if found else None


async def insert_case(
    session: AsyncSession,
    report_values: tuple,
    *,
    content_fingerprint: str,
    phone_index: str | None,
    state: str,
    emergency: bool,
    mandatory: bool,
    jurisdiction: str | None,
    not_a_case: str | None,
    predicted_risk: str | None,
    child_age: int | None = None,
    child_sex: str | None = None,
) -> tuple[int, int]:
    """A new case with its first report; returns (report id, case id). The child's age and
    sex are the report's, kept in plain on the case for the periodic report's figures."""
    conn = await _driver_connection(session)
    row = await conn.fetchrow(
        _INSERT,
        *report_values,
        state,
        emergency,
        mandatory,
        jurisdiction,
        not_a_case,
        predicted_risk,
        content_fingerprint,
        phone_index,
        child_age,
        child_sex,
    )
    return row["report_id"], row["case_id"]


async def attach_report(
    session: AsyncSession,
    report_values: tuple,
    *,
    case_id: int,
    content_fingerprint: str,
    phone_index: str | None,
    held: str | None = None,
) -> int:
    """A further report on an existing case; returns the report id. A held one (`held`,
    the reason) is on the timeline as `report_held`, for an operator to look at."""
    conn = await _driver_connection(session)
    event = "report_held" if held else "report_added"
    row = await conn.fetchrow(
        _ATTACH, *report_values, case_id, content_fingerprint, held, event, phone_index
    )
    return row["report_id"]


async def _driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under the session, in the session's transaction."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
_BY_EXTERNAL_ID = (
    "SELECT id, case_id, receipt_code FROM report WHERE channel = $1 AND external_id = $2"
)
_BY_FINGERPRINT = (
    "SELECT id, case_id, receipt_code FROM report WHERE fingerprint = $1"
    " AND created_at > now() - make_interval(secs => $2) ORDER BY id LIMIT 1"
)
# The same submission within seconds first (`same`), else the first report of the channel
# with the same content within the hold window; both ranges use their own index.
_BY_CONTENT = """
    SELECT id, case_id, receipt_code, same FROM (
        SELECT id, case_id, receipt_code,
               (fingerprint = $1 AND created_at > now() - make_interval(secs => $2)) IS TRUE
                   AS same
        FROM report
        WHERE (fingerprint = $1 AND created_at > now() - make_interval(secs => $2))
           OR (content_fingerprint = $3 AND channel = $5
               AND created_at > now() - make_interval(secs => $4))
    ) found
    ORDER BY same DESC, id
    LIMIT 1
    """


# What the timeline entry and the audit row say of a report: its channel and id (and, for
# a further report held for review, why).
_NEW_DETAIL = "jsonb_build_object('channel', $1, 'report_id', r.id)"
_ATTACH_DETAIL = (
    "jsonb_strip_nulls(jsonb_build_object('channel', $1, 'report_id', r.id, 'held', $21::text))"
)
_INTAKE_EVENT = insert_events(
    ("case_id", "event", "to_state", "actor", "data"),
    f"SELECT r.case_id, 'intake', c.state, $15, {_NEW_DETAIL} FROM r, c",
)
_ATTACH_EVENT = insert_events(
    ("case_id", "event", "actor", "data"), f"SELECT r.case_id, $22, $15, {_ATTACH_DETAIL} FROM r"
)


def _audit(detail: str) -> str:
    """The audit row of a report stored (`report.create` on its case), one CTE of its
    statement: $15 the actor, $16 the address."""
    return (
        "INSERT INTO audit_log (actor, action, object_type, object_id, ip, detail)"
        f" SELECT $15, 'report.create', 'case', r.case_id::text, $16, {detail} FROM r"
    )


# The case, its report, the first timeline event, the audit row and the outbox row for
# dispatch, in one statement: intake is the hot path, and one round trip keeps it cheap.
# $5 is the reporter's phone sealed, $26 its blind index; $27 and $28 the child's age and
# sex in plain (workflows.supervision.child_figures: the periodic report's figures).
_INSERT = f"""
    WITH c AS (
        INSERT INTO hcase (state, categories, emergency, mandatory, jurisdiction_code,
                           not_a_case, predicted_risk, child_age, child_sex)
        VALUES ($19, CAST($7 AS text[]), $20, $21, $22, $23, $24, $27, $28)
        RETURNING id, state
    ), r AS (
        INSERT INTO report (channel, external_id, receipt_code, case_id, reporter,
                            reporter_phone, situations, categories, child, jurisdiction_code,
                            address, description, in_danger_now, fingerprint, raw, judgement,
                            content_fingerprint, phone_index, name_index)
        SELECT $1, $2, $3, c.id, $4, $5, CAST($6 AS smallint[]),
               CAST($7 AS text[]), $8, $9, $10, $11, $12, $13,
               $14, CAST($17 AS jsonb), $25, $26, CAST($18 AS text[])
        FROM c
        RETURNING id, case_id
    ), e AS (
        {_INTAKE_EVENT}
    ), a AS (
        {_audit(_NEW_DETAIL)}
    ), o AS (
        INSERT INTO outbox (topic, payload, attempts)
        SELECT 'case.intake', jsonb_build_object('case_id', r.case_id, 'report_id', r.id), 0
        FROM r
    )
    SELECT r.id AS report_id, r.case_id FROM r
    """


# A further report on an existing case ($19; content fingerprint $20, held reason $21,
# event name $22, the reporter phone's blind index $23), its timeline event, its audit row
# and the case's matching again (dispatch.children.tasks): the new report's child and place
# get their blocking keys, so other cases find this one through what the later report said.
_ATTACH = f"""
    WITH r AS (
        INSERT INTO report (channel, external_id, receipt_code, case_id, reporter,
                            reporter_phone, situations, categories, child, jurisdiction_code,
                            address, description, in_danger_now, fingerprint, raw, judgement,
                            content_fingerprint, held, phone_index, name_index)
        VALUES ($1, $2, $3, $19, $4, $5, CAST($6 AS smallint[]),
                CAST($7 AS text[]), $8, $9, $10, $11, $12, $13,
                $14, CAST($17 AS jsonb), $20, $21, $23, CAST($18 AS text[]))
        RETURNING id, case_id
    ), e AS (
        {_ATTACH_EVENT}
    ), a AS (
        {_audit(_ATTACH_DETAIL)}
    ), o AS (
        INSERT INTO outbox (topic, payload, attempts)
        SELECT 'case.match', jsonb_build_object('case_id', r.case_id), 0
        FROM r
    )
    SELECT r.id AS report_id FROM r
    """
