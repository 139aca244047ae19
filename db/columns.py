"""Column helpers every table module shares."""

from typing import Any

import sqlalchemy as sa
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


def sealed_phone(nullable: bool = True) -> Any:
    """A phone number as ciphertext at rest (db.crypto): shown masked, dialled in full,
    never compared in SQL; lookups go through the `phone_index` beside it."""
    return Field(default=None, sa_column=sa.Column(EncryptedText, nullable=nullable))


def phone_index(index: bool = False) -> Any:
    """The blind index of the row's phone (db.crypto.phone_index), filled on every flush by
    `db.crypto.indexed`; None when there is no number."""
    return Field(default=None, max_length=64, index=index)
