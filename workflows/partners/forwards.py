"""Work orders forwarded by 110, 12345 and 12355: what each partner sends, and how it
becomes our report.

The contract fixes the common part (`external_id`, `content`, `received_at`, optional
`caller_phone`, `address`, `child`, `jurisdiction`); each partner adds words of its own for
urgency (110: danger `in_progress`, police `on_scene`; 12345: 一般/紧急/特急 and whether the
matter concerns a minor at all; 12355: its risk grade). Everything the partner sent is kept
in the report's `raw`, so a field we do not map yet is never lost. An order naming an
`original_external_id` updates that earlier order: it lands on the same case.
"""

from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from workflows import config
from workflows.cases.intake import NewReport
from workflows.config.schema import FeedbackStatus, PartnersConfig
from workflows.phones import normalize_phone
from workflows.places import jurisdiction_from_address, root_jurisdiction
from workflows.reference import jurisdiction_labels
from workflows.triage import judge

Urgency = Literal["normal", "urgent", "emergency"]
CHINA = ZoneInfo("Asia/Shanghai")
Id = Annotated[str, Field(min_length=1, max_length=120, pattern=r"^[^\s\x00]+$")]
Short = Annotated[str | None, Field(default=None, max_length=100)]

_GENDERS = {"male": "male", "female": "female", "unknown": "unknown", "男": "male", "女": "female"}


class ForwardChild(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    name: Short = None
    # Partners report what the caller said: an adult's age is possible, and tells us the
    # order may not be ours, so it is taken as given rather than refused.
    age: Annotated[int | None, Field(default=None, ge=0, le=120)] = None
    gender: Annotated[str | None, Field(default=None, max_length=10)] = None


class WorkOrder(BaseModel):
    """A forwarded work order (工单), every partner's fields in one model."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    external_id: Id
    content: Annotated[str, Field(min_length=1, max_length=5000)]
    received_at: datetime
    caller_name: Short = None
    caller_phone: Annotated[str | None, Field(default=None, max_length=40)] = None
    address: Annotated[str | None, Field(default=None, max_length=200)] = None
    child: ForwardChild | None = None
    jurisdiction: Annotated[str | None, Field(default=None, max_length=32)] = None
    original_external_id: Annotated[str | None, Field(default=None, max_length=120)] = None
    # 110
    in_progress: bool = False
    police_on_scene: bool = False
    incident_type: Short = None
    # 12345
    urgency: Annotated[str | None, Field(default=None, max_length=20)] = None
    appeal_type: Short = None
    about_minor: bool | None = None
    # 12355
    risk: Annotated[str | None, Field(default=None, max_length=20)] = None

    @field_validator("content", "caller_name", "address", "incident_type", "appeal_type")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("NUL")
        return value


FIELD_MESSAGES = {
    "external_id": "external_id 必填，不超过120个字符且不含空白",
    "content": "content（工单内容）必填，不超过5000字",
    "received_at": "received_at 应为 ISO 8601 时间",
    "caller_name": "来电人姓名不超过100字",
    "caller_phone": "来电号码不超过40个字符",
    "address": "地址不超过200字",
    "child": "child 应为对象（name、age、gender）",
    "child.name": "儿童姓名不超过100字",
    "child.age": "儿童年龄应为0到120之间的整数",
    "child.gender": "儿童性别不超过10个字符",
    "jurisdiction": "辖区代码不超过32个字符",
    "original_external_id": "original_external_id 不超过120个字符",
}


def _config() -> PartnersConfig:
    return config.partners()


def sources() -> tuple[str, ...]:
    """The partner systems this deployment takes work orders from: partners.toml's
    [sources.*], so a deployment adds one (its grid-management system, the school-roll
    system) by configuration, with its own field mapping, and its secret by
    `hotline partner add`."""
    return tuple(_config().sources)


def source_names() -> dict[str, str]:
    return {code: row.name for code, row in _config().sources.items()}


def _put(target: dict[str, Any], path: str, value: Any) -> None:
    head, _, rest = path.partition(".")
    if rest:
        inner = target.get(head)
        target[head] = inner = inner if isinstance(inner, dict) else {}
        _put(inner, rest, value)
    else:
        target[head] = value


def _get(source: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        if not isinstance(source, dict) or part not in source:
            return None
        source = source[part]
    return source


def mapped(source: str, data: dict[str, Any]) -> dict[str, Any]:
    """A partner's body in our field names: the source's [fields] mapping (ours = theirs,
    dotted for nested ones, e.g. "child.name" = "student.name"); fields it does not map
    keep their names."""
    known = _config().sources.get(source)
    mapping = known.fields if known else None
    if not mapping:
        return data
    out = {k: v for k, v in data.items() if k not in mapping.values()}
    for ours, theirs in mapping.items():
        value = _get(data, theirs)
        if value is not None:
            _put(out, ours, value)
    return out


def order_of(source: str, raw: dict[str, Any]) -> WorkOrder:
    """The stored body of a partner's order (report.raw, as sent) as a WorkOrder."""
    return WorkOrder.model_validate(mapped(source, raw))


def auto_registered(source: str) -> bool:
    """A partner's complete orders are registered without an operator unless its config
    says `auto_register = false`."""
    known = _config().sources.get(source)
    return known.auto_register if known else True


def source_name(source: str) -> str:
    """Its configured name; a partner whose source the deployment has since removed from
    its configuration is still listed, under its code."""
    known = _config().sources.get(source)
    return known.name if known else source


def urgency_of(source: str, order: WorkOrder) -> Urgency:
    """The partner's own words for urgency, in ours."""
    words = _config().sources[source].urgency
    if order.in_progress and "in_progress" in words:
        return words["in_progress"]
    said = order.urgency if source != "12355" else (order.risk or order.urgency)
    if said and said.strip().lower() in words:
        return words[said.strip().lower()]
    if said and said.strip() in words:
        return words[said.strip()]
    return words["default"]


def not_about_a_minor(order: WorkOrder) -> bool:
    """The partner says so, or the person concerned is an adult: a candidate for 退回."""
    adult = order.child is not None and order.child.age is not None and order.child.age >= 18
    return order.about_minor is False or adult


def needs_review(channel: str, raw: dict[str, Any] | None) -> bool:
    """Orders marked as not about a minor wait for an operator instead of being registered
    and sent to departments automatically. Read from the order as the partner sent it
    (the report's `raw`), so nothing of ours is mixed into it."""
    if channel not in sources() or not raw:
        return False
    try:
        return not_about_a_minor(order_of(channel, raw))
    except ValidationError:
        return False


def jurisdiction_of(order: WorkOrder, named: str | None = None) -> str | None:
    """The partner's code if it is one of ours, else the place the address names, else the
    place the text names (`named`, from its judgement), else the city (so the case still
    reaches the city's offices)."""
    if order.jurisdiction and order.jurisdiction in jurisdiction_labels():
        return order.jurisdiction
    return jurisdiction_from_address(order.address) or named or root_jurisdiction()


def text_to_judge(order: WorkOrder) -> str:
    """The partner's own words: the content and its notes (incident or appeal type), not
    the heading we put above them."""
    notes = [n for n in (order.incident_type, order.appeal_type) if n]
    return "\n".join([order.content, *notes])


def describe(
    source: str, order: WorkOrder, urgency: Urgency, *, judged_not_minor: bool = False
) -> str:
    """What staff read first: who forwarded it, how urgent, then the partner's own text.
    An order the partner marks, or the text's judgement finds, not about a minor is
    proposed for 退回."""
    label = getattr(_config().urgency_labels, urgency)
    head = f"【{source_name(source)}转办·{label}】"
    notes = []
    if order.incident_type:
        notes.append(f"警情类别：{order.incident_type}")
    if order.appeal_type:
        notes.append(f"诉求类型：{order.appeal_type}")
    if order.police_on_scene:
        notes.append("民警已到场")
    if not_about_a_minor(order):
        notes.append("来单标注：可能不涉及未成年人，请核实，必要时退回")
    elif judged_not_minor:
        notes.append("系统研判：可能不涉及未成年人，请核实，必要时退回")
    received = order.received_at
    if received.tzinfo is None:
        received = received.replace(tzinfo=CHINA)
    notes.append(f"对方受理时间：{received.astimezone(CHINA):%Y-%m-%d %H:%M}")
    return f"{head}{order.content}\n（{'；'.join(notes)}）"[:5000]


def to_report(source: str, order: WorkOrder, raw: dict[str, Any]) -> NewReport:
    urgency = urgency_of(source, order)
    phone = normalize_phone(order.caller_phone) if order.caller_phone else None
    reporter = {k: v for k, v in {"name": order.caller_name, "phone": phone}.items() if v} or None
    child = None
    if order.child:
        child = order.child.model_dump(exclude_none=True)
        if "gender" in child:
            child["gender"] = _GENDERS.get(child["gender"].lower(), "unknown")
        if order.address:
            child["address"] = order.address
        child = child or None
    judgement = judge(text_to_judge(order), channel=source)
    not_minor = judgement.not_a_case == "not_minor" and not judgement.emergency
    return NewReport(
        channel=source,
        external_id=order.external_id,
        description=describe(source, order, urgency, judged_not_minor=not_minor),
        reporter=reporter,
        reporter_phone=phone,
        child=child,
        jurisdiction_code=jurisdiction_of(order, judgement.jurisdiction),
        address=order.address,
        emergency=urgency == "emergency",
        in_danger_now=urgency == "emergency",
        raw=raw,
        actor=f"partner:{source}",
        judgement=judgement,
    )


# ---- 回访 (satisfaction) ---------------------------------------------------------------


def satisfaction_labels() -> list[str]:
    """Index 0 is score 1 (非常不满意) … index 4 is score 5 (非常满意)."""
    return list(_config().satisfaction.labels)


def satisfied_from() -> int:
    return _config().satisfaction.satisfied_from


class SatisfactionIn(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    external_id: Id
    satisfaction: Annotated[str | int, Field(union_mode="left_to_right")]
    comment: Annotated[str | None, Field(default=None, max_length=1000)] = None
    visited_at: datetime | None = None

    @field_validator("satisfaction")
    @classmethod
    def _score(cls, value: str | int) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5:
            return value
        labels = satisfaction_labels()
        if isinstance(value, str) and value.strip() in labels:
            return labels.index(value.strip()) + 1
        raise ValueError("unknown satisfaction")


SATISFACTION_MESSAGES = {
    "external_id": "external_id 必填",
    "satisfaction": "satisfaction 应为 1–5 或 非常满意/满意/基本满意/不满意/非常不满意",
    "comment": "评价内容不超过1000字",
    "visited_at": "visited_at 应为 ISO 8601 时间",
}


# ---- result feedback -------------------------------------------------------------------


def feedback_statuses() -> dict[str, FeedbackStatus]:
    """status → its event, label and text, in the order of the closed loop."""
    return _config().feedback.statuses


def status_for_event(event: str) -> str | None:
    for status, spec in _config().feedback.statuses.items():
        if spec.event == event:
            return status
    return None


def feedback_text(status: str, *, receipt: str, departments: str, reason: str | None) -> str:
    spec = _config().feedback.statuses[status]
    return spec.text.format(
        receipt=receipt,
        departments=departments or "相关部门",
        reason=(reason or "详见回访").rstrip("。"),
    )


def backoff_seconds(attempts: int) -> int:
    """Pause after the `attempts`-th failed try (the last configured pause repeats)."""
    pauses = _config().feedback.backoff_seconds
    return pauses[min(max(attempts, 1), len(pauses)) - 1]


def delivery_timeout() -> float:
    return _config().feedback.timeout_seconds
