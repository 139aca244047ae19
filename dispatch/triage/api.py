"""`POST /api/v1/triage`: the service's judgement of a text, the same one every channel's
reports get (workflows.triage.judge), for live help while a call is taken.

Not audited: it reads no case, and the text is not kept.
"""

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from channels.errors import ApiError
from channels.web import json_only
from dispatch.staff.auth import Principal, require
from workflows.triage import judge

router = APIRouter(prefix="/api/v1", tags=["triage"], dependencies=[Depends(json_only)])
STAFF = require("operator", "caseworker", "supervisor", "liaison")
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
        raise ApiError(422, "text_required", f"请填写要研判的文字（最多{MAX_CHARS}字）")
    if len(text) > MAX_CHARS:
        raise ApiError(422, "text_too_long", f"文字过长：最多{MAX_CHARS}字")
    return text


def judgement_out(text: str, channel: str | None = None) -> TriageOut:
    return TriageOut(**judge(checked_text(text), channel=channel).to_dict())


@router.post("/triage", response_model=TriageOut)
async def triage(
    body: TriageIn, principal: Annotated[Principal, Depends(STAFF)]
) -> TriageOut:
    """Categories, danger, mandatory situations, place and whether it is a case at all,
    with the phrases behind each."""
    return judgement_out(body.text)
