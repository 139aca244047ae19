"""Tables of triage: operators' corrections kept as labelled examples.

Each correction of a case (`PATCH /api/v1/cases/{id}`) stores the text that was judged with
the labels the operator settled on, in the corpus format (workflows/config/corpus/README.md),
so `hotline triage export` can hand the deployment's own examples to training.
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from db.columns import case_ref, timestamp

__all__ = ["TriageExample"]


class TriageExample(SQLModel, table=True):
    __tablename__ = "triage_example"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = case_ref(index=True)
    # The corpus register ("register" would shadow SQLModel.register): 12345, 110, sms, ...
    corpus_register: str = Field(max_length=20)
    text: str
    # {"categories", "emergency", "situations", "jurisdiction", "not_a_case"}: corpus fields.
    labels: dict = Field(sa_column=sa.Column(JSONB, nullable=False))
    # What the engine had said (its version and labels), to see what was corrected.
    judged: dict | None = Field(default=None, sa_column=sa.Column(JSONB, nullable=True))
    reason: str
    created_by: int | None = Field(default=None, foreign_key="app_user.id")
    actor: str = Field(max_length=80)
    created_at: datetime | None = timestamp()
