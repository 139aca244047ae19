"""Intake: what a report must contain, and how one becomes a durable case.

Every channel hands its input here as a `NewReport`; `record_report` writes the report, its
case, the first timeline event, the audit row and the outbox row for dispatch in one
transaction, so nothing is acknowledged before it is durable.
"""

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from db import clock, intake_repository
from db.crypto import keyed_hash, name_index, phone_index, seal, seal_json
from db.metrics import INTAKE, TRIAGE
from workflows.cases import receipts
from workflows.cases.emergency import raise_emergency
from workflows.phones import normalize_phone
from workflows.reference import category_labels, jurisdiction_labels
from workflows.supervision import child_figures
from workflows.triage import Judgement, judge
from workflows.triage.policy import Decision, decide

ReporterRole = Literal[
    "teacher", "doctor", "nurse", "social_worker", "community_cadre", "hotel_staff", "other"
]
Gender = Literal["male", "female", "unknown"]
ShortText = Annotated[str | None, Field(default=None, max_length=100)]

# A double click (or a client retry) within this many seconds finds the first submission.
DUPLICATE_WINDOW_SECONDS = 30
# `report.held` of a burst's later copy (record_report).
HELD_BURST = "burst"


class ReporterIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: ShortText = None
    unit: ShortText = None
    role: ReporterRole | None = None
    phone: Annotated[str | None, Field(default=None, max_length=32)] = None
    # The reporter asks not to be contacted (no SMS about the handling); the receipt works.
    no_contact: bool | None = None
    # A caller agreed, asked on the call, to be texted the handling result: a caller's number
    # is the line they called from, which may be the child's or shared with the harm, so a
    # call's reporter is texted only with this (dispatch.casework.reporter_notice).
    sms_consent: bool | None = None

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
        out.setdefault(path, FIELD_MESSAGES.get(path) or explain(err))
    return out


def _choices(expected: str) -> str:
    """pydantic's "'a', 'b' or 'c'" (from the schema, never the input) as a Chinese list."""
    parts = (part.strip().strip("'") for part in re.split(r",| or ", expected))
    return "、".join(part for part in parts if part)


def _one_of(ctx: dict[str, Any]) -> str:
    return "应为以下之一：" + _choices(str(ctx.get("expected", "")))


# What is wrong with a field and what is allowed, by pydantic's error type; the limits come
# from the schema (pydantic's `ctx`), never from what was sent.
_EXPLAIN = {
    "literal_error": _one_of,
    "enum": _one_of,
    "string_too_long": lambda ctx: f"最多{ctx['max_length']}个字",
    "string_too_short": lambda ctx: "不能为空" if ctx["min_length"] == 1
    else f"至少{ctx['min_length']}个字",
    "too_long": lambda ctx: f"最多{ctx['max_length']}项",
    "too_short": lambda ctx: f"至少{ctx['min_length']}项",
    "greater_than_equal": lambda ctx: f"应不小于{ctx['ge']}",
    "greater_than": lambda ctx: f"应大于{ctx['gt']}",
    "less_than_equal": lambda ctx: f"应不大于{ctx['le']}",
    "less_than": lambda ctx: f"应小于{ctx['lt']}",
}
# The messages that need no limit, each with the error types that mean it.
_FIXED = {
    "此项必填": ("missing",),
    "应为文字": ("string_type",),
    "格式不对": ("string_pattern_mismatch",),
    "应为整数": ("int_type", "int_parsing", "int_from_float"),
    "应为数字": ("float_type", "float_parsing"),
    "应为 true 或 false": ("bool_type", "bool_parsing"),
    "应为列表": ("list_type",),
    "应为对象": ("dict_type", "model_type", "model_attributes_type"),
    "应为日期时间，如 2026-07-01T09:00:00+08:00": (
        "datetime_type", "datetime_parsing", "datetime_from_date_parsing",
    ),
    "应为日期，如 2026-07-01": (
        "date_type", "date_parsing", "date_from_datetime_parsing", "date_from_datetime_inexact",
    ),
    "无法识别的字段": ("extra_forbidden",),
}
_FIXED_BY_TYPE = {kind: message for message, kinds in _FIXED.items() for kind in kinds}


def explain(err: dict[str, Any]) -> str:
    """A field's message when none is written for it: a validator's own Chinese message, else
    what pydantic's error type says is wrong and allowed, else a general one."""
    kind = str(err.get("type", ""))
    if kind == "value_error":
        message = str(err.get("msg", "")).removeprefix("Value error, ")
        if any("\u4e00" <= ch <= "\u9fff" for ch in message):
            return message
    if kind in _FIXED_BY_TYPE:
        return _FIXED_BY_TYPE[kind]
    try:
        return _EXPLAIN[kind](err.get("ctx") or {})
    except KeyError:
        return "此项填写有误"


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
    # Stored, but joined to the case of a report with the same content received shortly
    # before, and held there for an operator instead of being routed again (`record_report`).
    held: bool = False


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
    """Same channel and same content → same fingerprint (personal data only as a keyed
    hash: a plain SHA-256 of the reporter's name and number could be tested against guesses
    by anyone holding a dump)."""
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
    return keyed_hash(blob)


def content_fingerprint(description: str) -> str:
    """The description's words alone: width and case folded (NFKC), spacing, punctuation
    and symbols dropped, so copies differing in a space, a full stop or an emoji match.
    Digits and letters stay: a copied report with another child's name or room number is
    another report."""
    folded = unicodedata.normalize("NFKC", description).casefold()
    kept = "".join(ch for ch in folded if unicodedata.category(ch)[0] in "LNM")
    return hashlib.sha256(kept.encode()).hexdigest()


async def record_report(
    session: AsyncSession,
    new: NewReport,
    *,
    case_id: int | None = None,
    hold_seconds: int = 0,
) -> IntakeResult:
    """Store a report and its case in the caller's transaction; idempotent.

    With an external id (webhooks, forwards) the same (channel, external id) is one report;
    without one, the same content within DUPLICATE_WINDOW_SECONDS is. A transaction-scoped
    advisory lock on the key makes concurrent twins wait for each other instead of racing.
    With `case_id` the report joins that case instead of opening one (a partner's update of
    its work order): a report of its own, with its own receipt, on the same timeline.

    Bursts (`hold_seconds`, the public web channel): a report without an external id whose
    content (`content_fingerprint`) repeats one of the same channel received within
    `hold_seconds` is never lost and never routed again. It is stored as a report of its
    own (own receipt) joined to that report's case, marked held, with a `report_held`
    timeline entry and no intake job: police and liaisons are paged once, for the first,
    and the operators' incoming list shows each held copy with the case it joined. If a
    copy says a child is in danger now and the case is not yet an emergency, the case is
    raised to one (police get their copy, once). The lock is then taken on the content, so
    a burst of parallel copies queues behind the first instead of each opening a case.

    Intake is the hot path: its statements (`db.intake_repository`) go to asyncpg directly,
    inside the session's transaction, and the inserts are one statement.
    """
    fp = fingerprint(new)
    content = content_fingerprint(new.description)
    holding = hold_seconds > 0 and not new.external_id and case_id is None
    if new.external_id:
        key = f"{new.channel}:{new.external_id}"
    else:
        key = f"content:{new.channel}:{content}" if holding else f"fp:{fp}"
    found = await intake_repository.locked_twin(
        session, key=key, channel=new.channel, external_id=new.external_id, fingerprint=fp,
        window_seconds=DUPLICATE_WINDOW_SECONDS,
        content_fingerprint=content if holding else None, hold_seconds=hold_seconds,
    )
    if found and not found.same_content_only:
        INTAKE.labels(new.channel, "duplicate").inc()
        return IntakeResult(found.report_id, found.case_id, found.receipt_code, duplicate=True)

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
    index = phone_index(new.reporter_phone)  # what lookups by the number compare
    if found:  # a burst's later copy: stored, joined, held (see above)
        report_id = await intake_repository.attach_report(
            session, args, case_id=found.case_id, content_fingerprint=content, held=HELD_BURST,
            phone_index=index,
        )
        _count(new, decision, outcome="held")
        if decision.emergency:
            await raise_emergency(
                session, found.case_id, report_id, actor=new.actor,
                reason="内容相同的报告称儿童正面临危险",
                data={"report_id": report_id, "held": HELD_BURST}, now=clock.now(),
            )
        return IntakeResult(
            report_id, found.case_id, code, False, decision.emergency, held=True
        )
    if case_id is not None:
        report_id = await intake_repository.attach_report(
            session, args, case_id=case_id, content_fingerprint=content, phone_index=index
        )
        _count(new, decision, outcome="joined")
        return IntakeResult(report_id, case_id, code, False, decision.emergency)
    child_age, child_sex = child_figures(new.child)  # plain: the report's figures
    report_id, new_case_id = await intake_repository.insert_case(
        session,
        args,
        child_age=child_age,
        child_sex=child_sex,
        content_fingerprint=content,
        phone_index=index,
        state="discovered",
        emergency=decision.emergency,
        mandatory=decision.mandatory,
        jurisdiction=decision.jurisdiction,
        not_a_case=decision.not_a_case,
        predicted_risk=decision.predicted_risk,
    )
    _count(new, decision, outcome="case")
    return IntakeResult(report_id, new_case_id, code, False, decision.emergency)


def _count(new: NewReport, decision: Decision, *, outcome: str) -> None:
    """Counted once stored (a rollback after this is rare: the caller's own failure)."""
    INTAKE.labels(new.channel, outcome).inc()
    TRIAGE.labels(
        decision.predicted_risk,
        str(decision.emergency).lower(),
        str(decision.emergency and not new.emergency).lower(),
        decision.not_a_case or "",
    ).inc()


def _report_args(
    new: NewReport, fp: str, code: str, categories: list[str], judgement: Judgement
) -> tuple:
    """The report row's values, $1 to $18 of both inserts (`db.intake_repository`)."""
    return (
        new.channel,
        new.external_id or f"fp-{fp[:32]}-{code}",
        code,
        seal_json(new.reporter),  # ciphertext at rest (db.crypto)
        seal(new.reporter_phone),  # ciphertext at rest; its blind index goes beside it
        new.situations,
        categories,
        seal_json(new.child),  # ciphertext at rest (db.crypto)
        new.jurisdiction_code,
        new.address,
        new.description,
        new.in_danger_now,
        fp,
        seal_json(new.raw),  # ciphertext at rest (db.crypto)
        new.actor,
        new.ip,
        json.dumps(judgement.to_dict(), ensure_ascii=False),
        name_index((new.child or {}).get("name")),  # search by name (db.crypto)
    )
