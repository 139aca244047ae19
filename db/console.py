"""Tables of the staff consoles: case conference notes (个案会商).

A conference brings several departments together on one case; its notes are part of the
case's record (a `conference` event on the timeline points at the row).
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel

from db.columns import case_ref

__all__ = ["CaseConference"]


class CaseConference(SQLModel, table=True):
    __tablename__ = "case_conference"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = case_ref(index=True)
    held_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    # Department codes that took part (the center's own code included when it chaired).
    departments: list[str] = Field(
        default_factory=list, sa_column=sa.Column(ARRAY(sa.Text), nullable=False)
    )
    participants: str | None = None
    notes: str
    decisions: str | None = None
    created_by: int = Field(foreign_key="app_user.id")
    created_at: datetime | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
