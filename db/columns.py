"""Column helpers every table module shares."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field

from db.crypto import EncryptedText


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


def text_list() -> Any:
    """A `text[]` field (codes, keys, names), empty when nothing is given, in the database too."""
    return Field(
        default_factory=list,
        sa_column=sa.Column(ARRAY(sa.Text), nullable=False, server_default="{}"),
    )


def partial_index(name: str, *columns: str, where: str, unique: bool = False) -> sa.Index:
    """A PostgreSQL partial index: only the rows for which `where` (SQL) holds are in it, so a
    sweep or a queue reads what is pending, not the table."""
    return sa.Index(name, *columns, unique=unique, postgresql_where=sa.text(where))


def sealed_phone(nullable: bool = True) -> Any:
    """A phone number as ciphertext at rest (db.crypto): shown masked, dialled in full,
    never compared in SQL; lookups go through the `phone_index` beside it."""
    return Field(default=None, sa_column=sa.Column(EncryptedText, nullable=nullable))


def phone_index(index: bool = False) -> Any:
    """The blind index of the row's phone (db.crypto.phone_index), filled on every flush by
    `db.crypto.indexed`; None when there is no number."""
    return Field(default=None, max_length=64, index=index)


# Case and report ids are bigint (0035, `hotline_next_id`): time-based, 15 digits in 2026,
# below 2**53 (JavaScript's safe integers) until 2095. Every other row id is an integer.
CASE_ID_MAX = 2**63 - 1
CASE_ID_DIGITS = 19


def time_id() -> Any:
    """The primary key of `hcase` / `report`: bigint from the database's `hotline_next_id`
    (0035). Not an autoincrement column to SQLAlchemy: its ids grow only by the millisecond,
    so several rows of one flush must not be matched to the ids RETURNING gives by sorting them
    (insertmanyvalues' sentinel assumption for serials); each row is inserted on its own."""
    return Field(
        default=None,
        sa_column=sa.Column(
            sa.BigInteger, primary_key=True, autoincrement=False, server_default=sa.FetchedValue()
        ),
    )


def case_ref(**options: Any) -> Any:
    """A column naming a case: bigint, as `hcase.id` (`time_id`). `options` as `Field`'s
    (`default=None` for an optional one, `index`, `primary_key`, `unique`)."""
    return Field(foreign_key="hcase.id", sa_type=sa.BigInteger, **options)


def report_ref(**options: Any) -> Any:
    """A column naming a report: bigint, as `report.id` (`time_id`)."""
    return Field(foreign_key="report.id", sa_type=sa.BigInteger, **options)


def case_id_of(text: str) -> int | None:
    """A case (or report) id typed as digits, or None if it cannot be one."""
    text = text.strip()
    if not text.isdigit() or len(text) > CASE_ID_DIGITS:
        return None
    value = int(text)
    return value if 0 < value <= CASE_ID_MAX else None
