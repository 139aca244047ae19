"""The service's judgement of a text for staff, the same one every channel's reports get
(workflows.triage.judge): the API's `POST /api/v1/triage` and the operator's call page.

Not audited: it reads no case, and the text is not kept.
"""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from workflows.errors import Invalid
from workflows.triage import judge

# As long as a report's description may be.
MAX_CHARS = 5000


class TriageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Bounded here only so a huge body is refused by the model; the contract's limit and
    # its message are checked in the handler.
    text: Annotated[str, Field(max_length=MAX_CHARS * 4)]


class TriageOut(BaseModel):
    categories: list[str]  # category codes, best first
    scores: dict[str, float]
    emergency: bool
    situations: list[int]
    jurisdiction: str | None
    not_a_case: str | None  # consultation, not_minor, noise, or null
    risk: str  # predicted risk level
    # "category:<code>", "emergency", "situation:<n>", "jurisdiction", "not_a_case" → phrases
    evidence: dict[str, list[str]]
    version: str


def checked_text(text: str) -> str:
    if not text.strip():
        raise Invalid("text_required", f"请填写要研判的文字（最多{MAX_CHARS}字）")
    if len(text) > MAX_CHARS:
        raise Invalid("text_too_long", f"文字过长：最多{MAX_CHARS}字")
    return text


def judgement_out(text: str, channel: str | None = None) -> TriageOut:
    return TriageOut(**judge(checked_text(text), channel=channel).to_dict())
