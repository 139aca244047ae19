"""Operators' corrections as corpus lines (workflows/config/corpus/README.md), for
`hotline triage export`: the deployment's own labelled examples, ready for training."""

import json
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.triage import TriageExample


def corpus_line(example: TriageExample) -> dict[str, Any]:
    labels = example.labels or {}
    return {
        "id": f"correction-{example.id}",
        "register": example.corpus_register,
        "text": example.text,
        "categories": list(labels.get("categories") or []),
        "emergency": bool(labels.get("emergency")),
        "situations": list(labels.get("situations") or []),
        "jurisdiction": labels.get("jurisdiction"),
        "not_a_case": labels.get("not_a_case"),
        "tags": ["correction"],
    }


async def corpus_lines(session: AsyncSession, *, every: bool = False) -> AsyncIterator[str]:
    """One JSON line per corrected case (its latest correction), or per correction."""
    stmt = select(TriageExample).order_by(TriageExample.id)
    if not every:
        latest = select(func.max(TriageExample.id)).group_by(TriageExample.case_id)
        stmt = stmt.where(TriageExample.id.in_(latest))
    for example in (await session.execute(stmt)).scalars():
        yield json.dumps(corpus_line(example), ensure_ascii=False)
