"""Index key: the database remembers which key its blind indexes were made under

Revision ID: 0037
Revises: 0036

Phone numbers, children's names and the matching keys are found by keyed hashes under the
key ring's oldest entry (db.crypto). A ring without that entry opens every value still
(each names its key) but finds nothing by index: a texter who sent STOP is texted again, a
blocked number gets through. `index_key` holds the index key's public id (a keyed hash of
nothing), written by the first `hotline migrate` (or start) after this revision; `hotline
up`, `migrate`, `api`, `worker` and `scheduler` refuse a ring whose index key differs
(dispatch.ops.index_key). No existing rows change.
"""

from alembic import op

revision: str = "0037"
down_revision: str | None = "0036"


def upgrade() -> None:
    op.execute(
        "CREATE TABLE index_key (id smallint PRIMARY KEY CHECK (id = 1), "
        "key_id varchar(64) NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now())"
    )


def downgrade() -> None:
    op.execute("DROP TABLE index_key")
