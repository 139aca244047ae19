"""Tables of the child file (一人一档): the child, guardians, siblings, the cases about the
child, the file's own events, and ledger imports.

A report keeps what its reporter said (report.child); the `child` row is what the center has
established, linked to every case about the child over the years. Names, ID numbers and
guardians' names and phones are stored encrypted, with blind indexes for lookups (db.crypto);
`match_keys` are the keyed blocking keys of workflows.matching under a GIN index.
"""

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from db.columns import case_ref, text_list, timestamp
from db.crypto import EncryptedText, indexed, name_index

__all__ = ["CaseChild", "Child", "ChildEvent", "ChildSibling", "Guardian", "LedgerImport"]


@indexed(name_index=lambda child: name_index(child.name))
class Child(SQLModel, table=True):
    __tablename__ = "child"
    __table_args__ = (
        sa.Index("ix_child_match_keys", "match_keys", postgresql_using="gin"),
        sa.Index("ix_child_name_index", "name_index", postgresql_using="gin"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str | None = Field(default=None, sa_column=sa.Column(EncryptedText))
    # Keyed hashes of the name's character pairs (db.crypto.name_index): search by name.
    name_index: list[str] = text_list()
    gender: str | None = Field(default=None, max_length=10)
    birth_date: date | None = None
    # An age as someone gave it, and the day it was given (it grows with the file).
    age: int | None = None
    age_given_on: date | None = None
    id_number: str | None = Field(default=None, sa_column=sa.Column(EncryptedText))
    id_index: str | None = Field(default=None, max_length=64, index=True)
    hukou: str | None = Field(default=None, max_length=200)  # 户籍地
    address: str | None = Field(default=None, max_length=200)
    jurisdiction_code: str | None = Field(default=None, foreign_key="jurisdiction.code")
    school: str | None = Field(default=None, max_length=100)
    school_class: str | None = Field(default=None, max_length=50)
    categories: list[str] = text_list()
    risk_level: str | None = Field(default=None, max_length=10)
    match_keys: list[str] = text_list()
    # A duplicate file folded into another keeps pointing at it.
    merged_into_id: int | None = Field(default=None, foreign_key="child.id")
    # When someone last saw the child (a visit, a canvassing round), for 排查摸底.
    last_seen_at: datetime | None = timestamp(nullable=True)
    created_at: datetime | None = timestamp()
    updated_at: datetime | None = timestamp()


class Guardian(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    child_id: int = Field(foreign_key="child.id", index=True)
    relation: str = Field(max_length=20)  # 父亲, 母亲, 祖父母, ...
    name: str | None = Field(default=None, sa_column=sa.Column(EncryptedText))
    phone: str | None = Field(default=None, sa_column=sa.Column(EncryptedText))
    phone_index: str | None = Field(default=None, max_length=64, index=True)
    # present, away, imprisoned, rehab, missing, deceased, ill (the 监护缺失 conditions).
    state: str = Field(default="present", max_length=20)


class ChildSibling(SQLModel, table=True):
    """Stored once per pair, lower id first."""

    __tablename__ = "child_sibling"

    child_id: int = Field(foreign_key="child.id", primary_key=True)
    sibling_id: int = Field(foreign_key="child.id", primary_key=True, index=True)


class CaseChild(SQLModel, table=True):
    """A case is about one or more children ("两个孩子"); a child has many cases."""

    __tablename__ = "case_child"

    case_id: int = case_ref(primary_key=True)
    child_id: int = Field(foreign_key="child.id", primary_key=True, index=True)
    linked_by: str = Field(max_length=80)
    linked_at: datetime | None = timestamp()


class ChildEvent(SQLModel, table=True):
    """The file's own history: created, edited, linked, unlinked, merged, imported, seen."""

    __tablename__ = "child_event"

    id: int | None = Field(default=None, primary_key=True)
    child_id: int = Field(foreign_key="child.id", index=True)
    event: str = Field(max_length=30)
    actor: str = Field(max_length=80)
    actor_id: int | None = Field(default=None, foreign_key="app_user.id")
    case_id: int | None = case_ref(default=None)
    reason: str | None = None
    data: dict | None = Field(default=None, sa_column=sa.Column(JSONB, nullable=True))
    created_at: datetime | None = timestamp()


class LedgerImport(SQLModel, table=True):
    """One imported ledger or canvassing round: who, which file, what it did."""

    __tablename__ = "ledger_import"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)  # ledger, canvass
    filename: str = Field(max_length=200)
    jurisdiction_code: str | None = Field(default=None, foreign_key="jurisdiction.code")
    actor: str = Field(max_length=80)
    counts: dict = Field(default_factory=dict, sa_column=sa.Column(JSONB, nullable=False))
    created_at: datetime | None = timestamp()
