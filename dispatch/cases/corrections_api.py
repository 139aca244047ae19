"""`PATCH /api/v1/cases/{id}`: the center corrects what intake made of a case (categories,
emergency, jurisdiction, child details), with a reason; audited, on the timeline, routing
re-planned (dispatch.cases.corrections), the correction kept as a labelled example."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from channels.errors import ApiError
from channels.web import json_only, sessions
from db.models import Jurisdiction
from dispatch.cases.api import CaseDetail, get_case, load_case
from dispatch.cases.corrections import Correction, correct_case
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal, require_center
from workflows.cases.intake import ChildIn
from workflows.reference import category_labels, jurisdiction_labels

router = APIRouter(prefix="/api/v1/cases", tags=["cases"], dependencies=[Depends(json_only)])
CENTER_STAFF = require_center("operator", "caseworker", "supervisor")
Code = Annotated[str, Field(min_length=1, max_length=40)]


class CaseCorrectionIn(BaseModel):
    """Any of the four fields, and why."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    categories: Annotated[list[Code] | None, Field(default=None, max_length=13)] = None
    emergency: bool | None = None
    jurisdiction: Annotated[str | None, Field(default=None, min_length=1, max_length=32)] = None
    child: ChildIn | None = None
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


def _allowed(labels: dict[str, str]) -> str:
    return "、".join(f"{code}（{name}）" for code, name in labels.items())


def _checked_categories(codes: list[str] | None) -> list[str] | None:
    if codes is None:
        return None
    known = category_labels()
    if not codes:
        raise ApiError(
            422, "categories_required", f"请至少选择一个困境类型，可选：{_allowed(known)}"
        )
    if any(code not in known for code in codes):
        raise ApiError(422, "unknown_category", f"困境类型代码无效，可选：{_allowed(known)}")
    return list(dict.fromkeys(codes))


async def _checked_jurisdiction(session, code: str | None, principal: Principal) -> str | None:
    """A known jurisdiction inside the corrector's own scope (a case moved out of it would
    vanish from their sight)."""
    if code is None:
        return None
    known = jurisdiction_labels()
    if code not in known:
        raise ApiError(422, "unknown_jurisdiction", f"辖区代码无效，可选：{_allowed(known)}")
    path = await session.scalar(select(Jurisdiction.path).where(Jurisdiction.code == code))
    if not path or not path.startswith(principal.scope_path or "\x00"):
        raise ApiError(422, "jurisdiction_out_of_scope", "只能更正为您所辖范围内的辖区")
    return code


@router.patch("/{case_id}", response_model=CaseDetail)
async def correct(
    request: Request,
    case_id: int,
    body: CaseCorrectionIn,
    principal: Annotated[Principal, Depends(CENTER_STAFF)],
) -> CaseDetail:
    """Correct the case; answers it as `GET /api/v1/cases/{id}` does."""
    given = body.model_fields_set - {"reason"}
    if not given:
        raise ApiError(
            422, "nothing_to_correct", "请至少更正一项：categories、emergency、jurisdiction、child"
        )
    if "emergency" in given and body.emergency is None:
        raise ApiError(422, "invalid_emergency", "emergency 应为 true 或 false")
    now = datetime.now(UTC)
    async with sessions(request)() as session, session.begin():
        case = await load_case(session, principal, case_id, lock=True)
        fix = Correction(
            reason=body.reason,
            categories=_checked_categories(body.categories),
            emergency=body.emergency,
            jurisdiction=await _checked_jurisdiction(session, body.jurisdiction, principal),
            child=body.child.model_dump(exclude_unset=True) if body.child else None,
        )
        outcome = await correct_case(session, case, fix, principal, now)
        audit(
            session,
            principal,
            "case.correct",
            "case",
            case.id,
            request,
            {
                "fields": sorted(given),
                "changed": outcome.changed,
                "referrals_created": outcome.created,
                "referrals_withdrawn": outcome.withdrawn,
            },
        )
    return await get_case(request, case_id, principal)
