"""Column helpers every table module shares."""

from typing import Any

import sqlalchemy as sa
from sqlmodel import Field


def timestamp(nullable: bool = False, index: bool = False) -> Any:
    """A `timestamptz` field; a required one defaults to the database's now()."""
    return Field(
        default=None,
        sa_column=sa.Column(
            sa.DateTime(timezone=True),
            nullable=nullable,
            index=index,
            server_default=None if nullable else sa.func.now(),
        ),
    )
