"""What each configuration file holds, as pydantic models: `workflows.config.load` checks a
file against its model when it reads it, so a deployment's mistake stops the service with the
file and the key named (`risk.toml: [red] claim: 应为时长，如 30m、4h、7d、3wd（现为 'x'）`),
and the code reads attributes (`config.risk().timezone`) instead of string keys.

Keys a model does not name are kept (`extra="allow"`), as before, except in retention.toml,
where a misspelt period would silently keep its default; the one file without a model here,
holidays.toml (dates per year), checks itself, naming its key.
"""

import re
from datetime import time
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    StrictInt,
    ValidationError,
    model_validator,
)

_WINDOW = re.compile(r"\s*([1-9]\d*)\s*(m|h|d|wd)\s*")


def _window(text: str) -> str:
    if not _WINDOW.fullmatch(text):
        raise ValueError("应为时长，如 30m、4h、7d、3wd")
    return text


def _zone(text: str) -> str:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("应为时区名，如 Asia/Shanghai") from None
    return text


def _clock(text: str) -> str:
    try:
        time.fromisoformat(text)
    except ValueError:
        raise ValueError("应为时刻，如 09:00") from None
    return text


def _hours_range(text: str) -> str:
    start, sep, end = text.partition("-")
    try:
        opens = time.fromisoformat(start.strip())
        closes = time.max if end.strip() == "24:00" else time.fromisoformat(end.strip())
    except ValueError:
        opens = closes = None
    if not sep or opens is None or closes is None or closes <= opens:
        raise ValueError("应为时段，如 08:00-22:00")
    return text


WindowText = Annotated[str, AfterValidator(_window)]
Zone = Annotated[str, AfterValidator(_zone)]
Clock = Annotated[str, AfterValidator(_clock)]
HoursRange = Annotated[str, AfterValidator(_hours_range)]


class Section(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


# risk.toml --------------------------------------------------------------------------------


class LevelRules(Section):
    label: str
    claim: WindowText
    action: WindowText
    visit: WindowText


class RiskConfig(Section):
    # Every other top-level table is a level's rules ([red], [orange] …).
    __pydantic_extra__: dict[str, LevelRules] = Field(init=False)

    levels: list[str] = Field(min_length=1)
    timezone: Zone
    working_day_starts: Clock
    # 0 to 1; checked where it is used (workflows.referrals.deadlines), naming the key
    warn_before_fraction: float

    @model_validator(mode="after")
    def _every_level_has_rules(self) -> "RiskConfig":
        missing = [lv for lv in self.levels if lv not in (self.model_extra or {})]
        if missing:
            raise ValueError(f"levels 中的 {', '.join(missing)} 缺少对应的 [{missing[0]}] 表")
        return self

    def rules(self, level: str) -> LevelRules:
        return (self.model_extra or {})[level]


# channels.toml ----------------------------------------------------------------------------


class Hours(Section):
    workday: list[HoursRange]
    weekend: list[HoursRange]
    holiday: list[HoursRange]

    def of(self, kind: str) -> list[str]:
        return list(getattr(self, kind))


class Hotline(Section):
    name: str
    number: str
    timezone: Zone
    hours: Hours


class Sms(Section):
    thread_window_hours: PositiveFloat
    stop_keywords: list[str]
    start_keywords: list[str]
    help_keywords: list[str]
    max_reply_chars: PositiveInt
    retry_backoff_seconds: list[int] = Field(min_length=1)
    give_up_after_hours: PositiveFloat
    texts: dict[str, str]


class Voice(Section):
    language: str
    voice: str
    emergency_queue: str
    normal_queue: str
    menu_timeout_seconds: PositiveInt
    max_wait_seconds: PositiveInt
    emergency_max_wait_seconds: PositiveInt
    hold_pause_seconds: PositiveInt
    voicemail_max_seconds: PositiveInt
    callback_after_wait_seconds: NonNegativeInt
    max_block_hours: PositiveInt
    texts: dict[str, str]


class Degraded(Section):
    api: str
    web_title: str
    web: str
    voice: str
    voice_dial: str
    sms: str


class ChannelsConfig(Section):
    hotline: Hotline
    sms: Sms
    voice: Voice
    degraded: Degraded

    def texts(self, channel: str) -> dict[str, str]:
        """The texts of a channel ("sms" or "voice")."""
        return getattr(self, channel).texts


# casework.toml ----------------------------------------------------------------------------


class Need(Section):
    lead: str
    cooperating: list[str] = []
    due: WindowText = "5wd"


class Answer(BaseModel):
    """`[code, label, points]` or `[code, label, points, lowest level]`."""

    model_config = ConfigDict(frozen=True)

    code: str
    label: str
    points: int
    level: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            if len(value) not in (3, 4):
                raise ValueError("应为 [代码, 名称, 分值] 或 [代码, 名称, 分值, 最低等级]")
            return dict(zip(("code", "label", "points", "level"), value, strict=False))
        return value


class Question(Section):
    section: str
    code: str
    label: str
    answers: list[Answer] = Field(min_length=1)


class Assessment(Section):
    thresholds: list[tuple[str, int]]
    sections: dict[str, str]
    questions: list[Question]


class Intervention(Section):
    code: str
    label: str
    departments: list[str]


class Conference(Section):
    levels: list[str] = []
    min_departments: int = Field(3, gt=0)
    returns: int = Field(2, gt=0)


class Closing(Section):
    strict_levels: list[str]
    last_visit_within_days: PositiveInt
    exempt_types: list[str] = []
    types: dict[str, str]


class ReporterNotice(Section):
    channels: list[str]
    handling: str | None = None
    closed: str | None = None

    def text(self, state: str) -> str | None:
        """The SMS for a case entering `state`, if the deployment has one."""
        if state == "channels":
            return None
        value = getattr(self, state, None)
        return value if isinstance(value, str) else None


class CaseworkConfig(Section):
    visit_reminder_before: WindowText = "2d"
    approval_levels: list[str] = ["red", "orange"]
    needs: dict[str, Need]
    wrapup_types: dict[str, str]
    assessment: Assessment
    placements: dict[str, str]
    interventions: list[Intervention]
    conference: Conference
    closing: Closing
    reporter_notice: ReporterNotice


# supervision.toml -------------------------------------------------------------------------


class Scorecard(Section):
    weights: dict[str, float]
    min_received_to_rank: int = Field(1, ge=0)


class Orders(Section):
    max_days: PositiveInt


class Reports(Section):
    due_days: dict[str, int]
    age_bands: list[tuple[int, int, str]]


class Rate(Section):
    label: str
    numerator: str
    denominator: str


class SupervisionConfig(Section):
    scorecard: Scorecard
    orders: Orders
    reports: Reports
    rates: dict[str, Rate]


# reference.toml ---------------------------------------------------------------------------


class Network(Section):
    jurisdictions: list[tuple[str, str, int, str]]


class ReferenceConfig(Section):
    """Departments, categories and the network are what every part reads; a deployment's
    file may leave the rest out, as before (the shipped file has them all)."""

    departments: dict[str, str]
    categories: dict[str, tuple[str, str, list[str]]]
    network: Network
    situations: dict[str, str] = {}
    reporter_roles: dict[str, str] = {}
    genders: dict[str, str] = {}
    offices: dict[str, list[str]] = {}


# triage.toml ------------------------------------------------------------------------------


class Danger(Section):
    keywords: list[str]
    # Phrases removed before the keywords are looked for (workflows.triage.keywords).
    harmless: list[str]


class Scope(Section):
    negation: list[str]
    negation_window: int = Field(4, gt=0)
    not_negation: list[str]
    hypothetical: list[str]
    worry: list[str]
    not_worry: list[str]
    reported: list[str]
    past: list[str]
    present: list[str]


Share = Annotated[float, Field(ge=0, le=1)]


class EngineThresholds(Section):
    """What a channel may tune ([engine.channel.<channel>]); unset keys (None) keep
    [engine]'s, whose defaults are the engine's (`Engine`)."""

    emergency_threshold: Share | None = None
    emergency_recall_target: Share | None = None
    emergency_threshold_min: Share | None = None
    emergency_threshold_max: Share | None = None
    not_a_case_threshold: Share | None = None
    emergency_case_floor: Share | None = None
    primary_blend: float | None = Field(None, ge=0)
    category_threshold: Share | None = None
    situation_threshold: Share | None = None


class EngineDanger(Section):
    phrases: list[str] = []


class Abuse(Section):
    household: list[str] = []
    acts: list[str] = []
    repeated: list[str] = []
    injuries: list[str] = []
    apart: list[str] = []
    # Sexual acts: by a household member they need no word of repetition or injury.
    sexual: list[str] = []


class Night(Section):
    night: list[str] = []
    outdoors: list[str] = []
    habit: list[str] = []


class Adults(Section):
    """Texts about adults alone (triage.toml [engine.adults])."""

    adult: list[str] = []  # someone is an adult
    grown: list[str] = []  # the child of the clause is grown up
    child: list[str] = []  # a child is named
    not_child: list[str] = []  # contains a child's word without naming one
    family: list[str] = []  # a child's family or school: a child may be speaking
    hurt: list[str] = []  # someone may be hurt


class Engine(EngineThresholds):
    """[engine]: what it leaves out takes the engine's own default (a deployment's file may
    set only what it tunes); `emergency_threshold` unset means the artefact's trained one."""

    emergency_recall_target: Share = 0.97
    emergency_threshold_min: Share = 0.1
    emergency_threshold_max: Share = 0.5
    # A register's own trained emergency threshold needs this many training emergencies that
    # no rule keeps (0: one threshold for every register).
    emergency_register_min: NonNegativeInt = 0
    not_a_case_threshold: Share = 0.5
    emergency_case_floor: Share = 0.0
    primary_blend: float = Field(2.0, ge=0)
    category_threshold: Share = 0.35
    situation_threshold: Share = 0.3
    safe: list[str] = []
    false_alarm: list[str] = []
    # A note saying the call was a false alarm: no case (noise) when it is no emergency.
    false_alarm_note: list[str] = []
    boilerplate: list[str] = []
    channel: dict[str, EngineThresholds] = {}
    danger: EngineDanger = EngineDanger()
    abuse: Abuse = Abuse()
    night: Night = Night()
    adults: Adults = Adults()


class TriageConfig(Section):
    """The engine (workflows.triage) reads this model: [engine] and its tables take the
    engine's defaults for what a deployment's file leaves out."""

    categories: dict[str, list[str]]
    danger: Danger
    scope: Scope
    engine: Engine = Engine()


# matching.toml ----------------------------------------------------------------------------

# Every signal workflows.matching.score can find: each needs a weight.
SIGNALS = (
    "id_same", "id_differs", "name_same", "name_sound", "name_one_off", "name_initials",
    "name_differs", "age_match", "age_differs", "gender_same", "gender_differs",
    "address_same", "address_near", "place_same", "address_differs", "jurisdiction_same",
    "jurisdiction_differs", "phone_same", "time_near", "time_far", "category_differs",
    "category_same", "story_similar",
)


class MatchThresholds(Section):
    suggest: Share
    very_likely: Share
    ledger_match: Share


class MatchWindows(Section):
    near_days: NonNegativeInt
    far_days: NonNegativeInt
    story_overlap: Share
    candidates: PositiveInt
    place_candidates: PositiveInt


class Signal(Section):
    weight: float
    # Shown to staff as a reason when the signal speaks for a match.
    label: str | None = None


class Canvass(Section):
    unseen_days: int = Field(180, gt=0)


class MatchingConfig(Section):
    bias: float
    thresholds: MatchThresholds
    windows: MatchWindows
    signals: dict[str, Signal]
    canvass: Canvass = Canvass()

    @model_validator(mode="after")
    def _every_signal_has_a_weight(self) -> "MatchingConfig":
        missing = [name for name in SIGNALS if name not in self.signals]
        if missing:
            raise ValueError(f"缺少信号 {', '.join(f'[signals.{n}]' for n in missing)}")
        return self


# partners.toml ----------------------------------------------------------------------------

URGENCIES = ("normal", "urgent", "emergency")


def _urgency(text: str) -> str:
    if text not in URGENCIES:
        raise ValueError("应为 normal、urgent 或 emergency")
    return text


def _five_labels(labels: list[str]) -> list[str]:
    if len(labels) != 5:
        raise ValueError("应为5项，从1分（最差）到5分（最好）")
    return labels


UrgencyWord = Annotated[str, AfterValidator(_urgency)]


class Source(Section):
    name: str
    # The partner's words (lower-case, or as written) → ours; "default" for any other.
    urgency: dict[str, UrgencyWord]
    # Our field name = theirs (dotted for nested ones).
    fields: dict[str, str] = {}
    auto_register: bool = True

    @model_validator(mode="after")
    def _has_default(self) -> "Source":
        if "default" not in self.urgency:
            raise ValueError("[urgency] 缺少 default（其他说法对应的紧急程度）")
        return self


class UrgencyLabels(Section):
    normal: str
    urgent: str
    emergency: str


class FeedbackStatus(Section):
    event: str
    label: str
    text: str


class Feedback(Section):
    timeout_seconds: PositiveFloat
    backoff_seconds: list[int] = Field(min_length=1)
    statuses: dict[str, FeedbackStatus]


class Satisfaction(Section):
    labels: Annotated[list[str], AfterValidator(_five_labels)]
    satisfied_from: int = Field(ge=1, le=5)


class PartnersConfig(Section):
    sources: dict[str, Source]
    urgency_labels: UrgencyLabels
    feedback: Feedback
    satisfaction: Satisfaction


# places.toml ------------------------------------------------------------------------------


class PlacesConfig(Section):
    # jurisdiction code → the other names people use for it
    aliases: dict[str, list[str]] = {}


# retention.toml ---------------------------------------------------------------------------

Period = Annotated[StrictInt, Field(ge=1, le=10**6)]


class RetentionPeriods(BaseModel):
    """A wrong period deletes data that cannot be brought back: every value a whole number
    in range, and an unknown key refused (a misspelt one would leave the default in force).
    workflows.retention.Periods is this model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    non_case_days: Period = 365
    closed_years_after_adulthood: Period = 5
    closed_years_without_age: Period = 10
    sms_body_days: Period = 365
    recording_days: Period = 180
    batch: Period = 1000
    # The scheduler's daily run starts after this local hour.
    hour: Annotated[StrictInt, Field(ge=0, le=23)] = 3


class RetentionConfig(Section):
    retention: RetentionPeriods = RetentionPeriods()


MODELS: dict[str, type[BaseModel]] = {
    "risk": RiskConfig,
    "channels": ChannelsConfig,
    "casework": CaseworkConfig,
    "supervision": SupervisionConfig,
    "reference": ReferenceConfig,
    "triage": TriageConfig,
    "matching": MatchingConfig,
    "partners": PartnersConfig,
    "places": PlacesConfig,
    "retention": RetentionConfig,
}

# What a value should have been, in the operator's language (pydantic's error types).
_EXPECTED = {
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "string_type": "应为字符串",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "list_type": "应为列表",
    "tuple_type": "应为列表",
    "dict_type": "应为表",
    "model_type": "应为表",
    "model_attributes_type": "应为表",
    "missing": "缺少此项",
    "greater_than": "应大于 {gt}",
    "greater_than_equal": "应不小于 {ge}",
    "less_than": "应小于 {lt}",
    "less_than_equal": "应不大于 {le}",
    "too_short": "不能为空",
    "too_long": "项数过多",
    "extra_forbidden": "未知的设置",
}


def _where(loc: tuple[int | str, ...]) -> str:
    """`("sms", "texts", "stop")` → `[sms.texts] stop`; a list's item as `第2项`."""
    names = [str(p) for p in loc if not isinstance(p, int)]
    if not names:
        return "（文件顶层）"
    table, key = names[:-1], names[-1]
    index = "、".join(f"第{p + 1}项" for p in loc if isinstance(p, int))
    return (f"[{'.'.join(table)}] " if table else "") + key + (f" {index}" if index else "")


def describe(file: str, error: ValidationError) -> str:
    """One line per wrong key: `risk.toml: [red] claim: 应为时长…（现为 'x'）`."""
    lines = []
    for item in error.errors(include_url=False):
        kind = item["type"]
        if kind in _EXPECTED:
            # A float field's bound is a float: "应不大于 1", not "1.0".
            ctx = {k: int(v) if isinstance(v, float) and v.is_integer() else v
                   for k, v in item.get("ctx", {}).items()}
            what = _EXPECTED[kind].format(**ctx)
        else:
            what = str(item["msg"]).removeprefix("Value error, ")
        got = "" if kind == "missing" else f"（现为 {item['input']!r}）"
        if isinstance(item.get("input"), dict | list) and kind != "dict_type":
            got = ""
        lines.append(f"{file}: {_where(tuple(item['loc']))}: {what}{got}")
    return "\n".join(lines)
