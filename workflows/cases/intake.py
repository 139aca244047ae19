"""Intake: what a report must contain, and how one becomes a durable case.

Every channel hands its input here as a `NewReport`; `record_report` writes the report, its
case, the first timeline event, the audit row and the outbox row for dispatch in one
transaction, so nothing is acknowledged before it is durable.
"""

import hashlib
import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from db.metrics import INTAKE, TRIAGE
from workflows.cases import receipts
from workflows.phones import normalize_phone
from workflows.reference import category_labels, jurisdiction_labels
from workflows.triage import Judgement, judge
from workflows.triage.policy import Decision, decide

ReporterRole = Literal[
    "teacher", "doctor", "nurse", "social_worker", "community_cadre", "hotel_staff", "other"
]
Gender = Literal["male", "female", "unknown"]
ShortText = Annotated[str | None, Field(default=None, max_length=100)]

# A double click (or a client retry) within this many seconds finds the first submission.
DUPLICATE_WINDOW_SECONDS = 30


class ReporterIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: ShortText = None
    unit: ShortText = None
    role: ReporterRole | None = None
    phone: Annotated[str | None, Field(default=None, max_length=32)] = None

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if not value:
            return None
        normalized = normalize_phone(value)
        if normalized is None:
            raise ValueError("invalid phone")
        return normalized


class ChildIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: ShortText = None
    age: Annotated[int | None, Field(default=None, ge=0, le=17)] = None
    gender: Gender | None = None
    address: Annotated[str | None, Field(default=None, max_length=200)] = None


class ReportIn(BaseModel):
    """A mandatory reporter's report (web form and `POST /api/v1/reports`)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reporter: ReporterIn = Field(default_factory=ReporterIn)
    situations: Annotated[list[Annotated[int, Field(ge=1, le=9)]], Field(max_length=9)] = []
    categories: Annotated[list[str], Field(max_length=13)] = []
    child: ChildIn = Field(default_factory=ChildIn)
    jurisdiction: Annotated[str | None, Field(default=None, max_length=32)] = None
    description: Annotated[str, Field(min_length=1, max_length=5000)]
    in_danger_now: bool = False

    @field_validator("categories")
    @classmethod
    def _categories(cls, value: list[str]) -> list[str]:
        known = category_labels()
        if any(code not in known for code in value):
            raise ValueError("unknown category")
        return list(dict.fromkeys(value))

    @field_validator("situations")
    @classmethod
    def _situations(cls, value: list[int]) -> list[int]:
        return sorted(set(value))

    @field_validator("jurisdiction")
    @classmethod
    def _jurisdiction(cls, value: str | None) -> str | None:
        if value and value not in jurisdiction_labels():
            raise ValueError("unknown jurisdiction")
        return value or None


# What people read next to a field that is wrong, keyed by the field's dotted path.
FIELD_MESSAGES = {
    "description": "请填写发生了什么（不超过5000字）",
    "reporter.name": "报告人姓名不超过100字",
    "reporter.unit": "单位名称不超过100字",
    "reporter.role": "请选择报告人身份",
    "reporter.phone": "请填写有效的手机号或固定电话",
    "child.name": "儿童姓名不超过100字",
    "child.age": "儿童年龄应为0到17之间的整数",
    "child.gender": "请选择儿童性别",
    "child.address": "地址不超过200字",
    "situations": "请从列出的强制报告情形中选择",
    "categories": "请从列出的困境类型中选择",
    "jurisdiction": "请选择所属辖区",
    "in_danger_now": "请选择儿童现在是否有危险",
    "reason": "请填写原因（不超过2000字）",
    "emergency": "emergency 应为 true 或 false",
}


def field_errors(error: ValidationError | list[dict[str, Any]]) -> dict[str, str]:
    """Chinese messages per field, for the JSON error body and next to the form's fields.

    Works on pydantic's error list; never echoes the submitted value back.
    """
    errors = error.errors() if isinstance(error, ValidationError) else error
    out: dict[str, str] = {}
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p != "body" and not isinstance(p, int)]
        path = ".".join(loc)
        if not path or path not in FIELD_MESSAGES and err.get("type") == "extra_forbidden":
            out.setdefault(path or "body", "包含无法识别的字段")
            continue
        out.setdefault(path, FIELD_MESSAGES.get(path, "此项填写有误"))
    return out


@dataclass
class NewReport:
    """A report as every channel hands it over, before it is stored."""

    channel: str
    description: str
    external_id: str | None = None
    reporter: dict[str, Any] | None = None
    reporter_phone: str | None = None
    situations: list[int] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    child: dict[str, Any] | None = None
    jurisdiction_code: str | None = None
    address: str | None = None
    emergency: bool = False
    in_danger_now: bool = False
    raw: dict[str, Any] | None = None
    actor: str = "public"
    ip: str | None = None
    # The judgement of the report's text, when the channel needed it first (an SMS reply
    # depends on it, a forward's place falls back to it); otherwise record_report judges
    # `judge_text` (what the person wrote, without our own headings) or the description.
    judgement: Judgement | None = None
    judge_text: str | None = None


@dataclass(frozen=True)
class IntakeResult:
    report_id: int
    case_id: int
    receipt_code: str
    duplicate: bool
    # The report makes its case an emergency (reporter, partner or text): a report joining
    # an existing case raises it (see channels.partners.forwards).
    emergency: bool = False


def judgement_of(new: NewReport) -> Judgement:
    """The report's one judgement: the channel's, or made now."""
    if new.judgement is None:
        text = new.judge_text if new.judge_text is not None else new.description
        new.judgement = judge(text, channel=new.channel)
    return new.judgement


def from_report_in(body: ReportIn, *, channel: str = "webform") -> NewReport:
    reporter = body.reporter.model_dump(exclude_none=True)
    return NewReport(
        channel=channel,
        description=body.description,
        reporter=reporter or None,
        reporter_phone=body.reporter.phone,
        situations=body.situations,
        categories=body.categories,
        child=body.child.model_dump(exclude_none=True) or None,
        jurisdiction_code=body.jurisdiction,
        address=body.child.address,
        in_danger_now=body.in_danger_now,
        emergency=body.in_danger_now,
    )


def fingerprint(report: NewReport) -> str:
    """Same channel and same content → same fingerprint (personal data only as a hash)."""
    content = {
        "channel": report.channel,
        "description": report.description,
        "reporter": report.reporter,
        "situations": report.situations,
        "categories": report.categories,
        "child": report.child,
        "jurisdiction": report.jurisdiction_code,
        "danger": report.in_danger_now,
    }
    blob = json.dumps(content, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()


async def record_report(
    session: AsyncSession, new: NewReport, *, case_id: int | None = None
) -> IntakeResult:
    """Store a report and its case in the caller's transaction; idempotent.

    With an external id (webhooks, forwards) the same (channel, external id) is one report;
    without one, the same content within DUPLICATE_WINDOW_SECONDS is. A transaction-scoped
    advisory lock on the key makes concurrent twins wait for each other instead of racing.
    With `case_id` the report joins that case instead of opening one (a partner's update of
    its work order): a report of its own, with its own receipt, on the same timeline.
    Intake is the hot path: the statements go to asyncpg directly, inside the session's
    transaction, and the inserts are one statement.
    """
    fp = fingerprint(new)
    conn = await _driver_connection(session)
    found = await _locked_twin(session, conn, new, fp)
    if found:
        INTAKE.labels(new.channel, "duplicate").inc()
        return found

    # One judgement per report: the text's categories, danger, situations and place join
    # what the person said (workflows.triage.policy); it is stored with the report.
    judgement = judgement_of(new)
    decision = decide(
        judgement,
        channel=new.channel,
        categories=new.categories,
        situations=new.situations,
        emergency=new.emergency,
        jurisdiction=new.jurisdiction_code,
    )
    code = receipts.new_code()
    args = _report_args(new, fp, code, decision.categories, judgement)
    if case_id is not None:
        row = await conn.fetchrow(_ATTACH, *args, case_id)
        _count(new, decision, joined=True)
        return IntakeResult(row["report_id"], case_id, code, False, decision.emergency)
    row = await conn.fetchrow(
        _INSERT,
        *args,
        "discovered",
        decision.emergency,
        decision.mandatory,
        decision.jurisdiction,
        decision.not_a_case,
        decision.predicted_risk,
    )
    _count(new, decision, joined=False)
    return IntakeResult(row["report_id"], row["case_id"], code, False, decision.emergency)


def _count(new: NewReport, decision: Decision, *, joined: bool) -> None:
    """Counted once stored (a rollback after this is rare: the caller's own failure)."""
    INTAKE.labels(new.channel, "joined" if joined else "case").inc()
    TRIAGE.labels(
        decision.predicted_risk,
        str(decision.emergency).lower(),
        str(decision.emergency and not new.emergency).lower(),
        decision.not_a_case or "",
    ).inc()


def _report_args(
    new: NewReport, fp: str, code: str, categories: list[str], judgement: Judgement
) -> tuple:
    """The report row's values, $1 to $17 of both inserts below."""
    return (
        new.channel,
        new.external_id or f"fp-{fp[:32]}-{code}",
        code,
        _json_or_none(new.reporter),
        new.reporter_phone,
        new.situations,
        categories,
        _json_or_none(new.child),
        new.jurisdiction_code,
        new.address,
        new.description,
        new.in_danger_now,
        fp,
        _json_or_none(new.raw),
        new.actor,
        new.ip,
        json.dumps(judgement.to_dict(), ensure_ascii=False),
    )


async def _locked_twin(
    session: AsyncSession, conn: Any, new: NewReport, fp: str
) -> IntakeResult | None:
    """Take the report's advisory lock (concurrent twins wait for each other), then find
    the twin already stored, if any.

    The lock goes through SQLAlchemy on purpose: its asyncpg adapter sends BEGIN only with
    its own first statement, so statements sent on the raw connection before that would
    each run on their own, and a transaction-scoped lock would be let go at once.
    """
    key = f"{new.channel}:{new.external_id}" if new.external_id else f"fp:{fp}"
    await session.execute(_LOCK, {"key": key})
    if new.external_id:
        found = await conn.fetchrow(_BY_EXTERNAL_ID, new.channel, new.external_id)
    else:
        found = await conn.fetchrow(_BY_FINGERPRINT, fp, DUPLICATE_WINDOW_SECONDS)
    if found:
        return IntakeResult(found["id"], found["case_id"], found["receipt_code"], duplicate=True)
    return None


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


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


# The case, its report, the first timeline event, the audit row and the outbox row for
# dispatch, in one statement: intake is the hot path, and one round trip keeps it cheap.
_INSERT = """
    WITH c AS (
        INSERT INTO hcase (state, categories, emergency, mandatory, jurisdiction_code,
                           not_a_case, predicted_risk)
        VALUES ($18, CAST($7 AS text[]), $19, $20, $21, $22, $23)
        RETURNING id, state
    ), r AS (
        INSERT INTO report (channel, external_id, receipt_code, case_id, reporter,
                            reporter_phone, situations, categories, child, jurisdiction_code,
                            address, description, in_danger_now, fingerprint, raw, judgement)
        SELECT $1, $2, $3, c.id, CAST($4 AS jsonb), $5, CAST($6 AS smallint[]),
               CAST($7 AS text[]), CAST($8 AS jsonb), $9, $10, $11, $12, $13,
               CAST($14 AS jsonb), CAST($17 AS jsonb)
        FROM c
        RETURNING id, case_id
    ), e AS (
        INSERT INTO case_event (case_id, event, to_state, actor, data)
        SELECT r.case_id, 'intake', c.state, $15,
               jsonb_build_object('channel', $1, 'report_id', r.id)
        FROM r, c
    ), a AS (
        INSERT INTO audit_log (actor, action, object_type, object_id, ip, detail)
        SELECT $15, 'report.create', 'case', r.case_id::text, $16,
               jsonb_build_object('channel', $1, 'report_id', r.id)
        FROM r
    ), o AS (
        INSERT INTO outbox (topic, payload, attempts)
        SELECT 'case.intake', jsonb_build_object('case_id', r.case_id, 'report_id', r.id), 0
        FROM r
    )
    SELECT r.id AS report_id, r.case_id FROM r
    """


# A further report on an existing case, its timeline event and its audit row.
_ATTACH = """
    WITH r AS (
        INSERT INTO report (channel, external_id, receipt_code, case_id, reporter,
                            reporter_phone, situations, categories, child, jurisdiction_code,
                            address, description, in_danger_now, fingerprint, raw, judgement)
        VALUES ($1, $2, $3, $18, CAST($4 AS jsonb), $5, CAST($6 AS smallint[]),
                CAST($7 AS text[]), CAST($8 AS jsonb), $9, $10, $11, $12, $13,
                CAST($14 AS jsonb), CAST($17 AS jsonb))
        RETURNING id, case_id
    ), e AS (
        INSERT INTO case_event (case_id, event, actor, data)
        SELECT r.case_id, 'report_added', $15,
               jsonb_build_object('channel', $1, 'report_id', r.id)
        FROM r
    ), a AS (
        INSERT INTO audit_log (actor, action, object_type, object_id, ip, detail)
        SELECT $15, 'report.create', 'case', r.case_id::text, $16,
               jsonb_build_object('channel', $1, 'report_id', r.id)
        FROM r
    )
    SELECT r.id AS report_id FROM r
    """
