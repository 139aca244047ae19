"""Children's and guardians' names as ciphertext at rest, searched by keyed hashes;
blocking keys hashed; no stored pinyin

Revision ID: 0032
Revises: 0030

`report.child` (what the reporter said of the child: name, age, gender, address) becomes a
text column of AES-GCM ciphertext (db.crypto), as `report.reporter` is; `child.name` and
`guardian.name` likewise. Search by a child's name uses the new `name_index` (text[], GIN)
of report and child: keyed hashes of each pair of consecutive characters of the name
(db.crypto.name_index). `match_keys` (duplicate matching's blocking keys: names by sound,
initials, phones, places) are replaced by their keyed hashes (the kind's two-character prefix
and 128 bits of HMAC, as workflows.matching.keys.sealed makes them), so equality still finds
candidates. `child.name_pinyin` is dropped: the file shows the pinyin worked out from the
name. Existing rows are converted in batches.

The downgrade opens the names and children again, puts back `name_pinyin` (from the names)
and empties `match_keys` (a keyed hash cannot be read back): run `hotline children keys`
after it to rebuild them.
"""

import json
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0032"
down_revision: str | None = "0031"

_BATCH = 1000
# Ciphertext is `<key id>:<urlsafe base64>`; a name or a JSON object never has that shape.
_SEALED = "^[0-9a-f]{8}:[A-Za-z0-9_=-]+$"
# A hashed blocking key: its kind ("f:", "p:", …) and 32 hex digits.
_HASHED_KEY = "^[a-z]:[0-9a-f]{32}$"


def _batches(select: str, write: str, change: Callable[[tuple], dict]) -> None:
    """Rows `select` finds (id first, ordered by id, after :last), rewritten by `write`."""
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(sa.text(f"{select} LIMIT {_BATCH}"), {"last": last}).all()
        if not rows:
            return
        conn.execute(sa.text(write), [change(tuple(row)) for row in rows])
        last = rows[-1][0]


def _hash_key(key: str) -> str:
    from db.crypto import keyed_hash

    return key[:2] + keyed_hash(key.encode())[:32]


def _seal_report(row: tuple) -> dict:
    from db.crypto import name_index, seal_json

    row_id, child = row
    value = json.loads(child)
    name = value.get("name") if isinstance(value, dict) else None
    return {"id": row_id, "child": seal_json(value), "index": name_index(name)}


def _seal_name(row: tuple) -> dict:
    from db.crypto import encrypt, name_index

    return {"id": row[0], "name": encrypt(row[1]), "index": name_index(row[1])}


def _hash_keys(row: tuple) -> dict:
    import re

    return {"id": row[0], "keys": [k if re.fullmatch(_HASHED_KEY, k) else _hash_key(k)
                                   for k in row[1]]}


def upgrade() -> None:
    op.execute("ALTER TABLE report ALTER COLUMN child TYPE text USING child::text")
    op.execute("ALTER TABLE child ALTER COLUMN name TYPE text")
    op.execute("ALTER TABLE guardian ALTER COLUMN name TYPE text")
    for table in ("report", "child"):
        op.add_column(table, sa.Column("name_index", ARRAY(sa.Text), nullable=False,
                                       server_default="{}"))
    _batches(
        f"SELECT id, child FROM report WHERE id > :last AND child IS NOT NULL"
        f" AND child !~ '{_SEALED}' ORDER BY id",
        "UPDATE report SET child = :child, name_index = CAST(:index AS text[]) WHERE id = :id",
        _seal_report,
    )
    _batches(
        f"SELECT id, name FROM child WHERE id > :last AND name <> '' AND name !~ '{_SEALED}'"
        " ORDER BY id",
        "UPDATE child SET name = :name, name_index = CAST(:index AS text[]) WHERE id = :id",
        _seal_name,
    )
    _batches(
        f"SELECT id, name FROM guardian WHERE id > :last AND name <> ''"
        f" AND name !~ '{_SEALED}' ORDER BY id",
        "UPDATE guardian SET name = :name WHERE id = :id",
        lambda row: {"id": row[0], "name": _seal_name(row)["name"]},
    )
    for table in ("report", "child"):
        _batches(
            f"SELECT id, match_keys FROM {table} WHERE id > :last AND match_keys <> '{{}}'"
            " ORDER BY id",
            f"UPDATE {table} SET match_keys = CAST(:keys AS text[]) WHERE id = :id",
            _hash_keys,
        )
        op.create_index(f"ix_{table}_name_index", table, ["name_index"],
                        postgresql_using="gin")
    op.drop_column("child", "name_pinyin")


def _open_report(row: tuple) -> dict:
    from db.crypto import open_json

    return {"id": row[0], "child": json.dumps(open_json(row[1]), ensure_ascii=False)}


def _open_name(row: tuple) -> dict:
    from db.crypto import decrypt

    return {"id": row[0], "name": decrypt(row[1])}


def _open_child(row: tuple) -> dict:
    from workflows.matching.normalize import pinyin

    name = _open_name(row)["name"]
    return {"id": row[0], "name": name, "pinyin": pinyin(name)[:300] or None}


def downgrade() -> None:
    op.add_column("child", sa.Column("name_pinyin", sa.String(300)))
    _batches(
        f"SELECT id, child FROM report WHERE id > :last AND child ~ '{_SEALED}' ORDER BY id",
        "UPDATE report SET child = :child WHERE id = :id",
        _open_report,
    )
    _batches(
        f"SELECT id, name FROM child WHERE id > :last AND name ~ '{_SEALED}' ORDER BY id",
        "UPDATE child SET name = :name, name_pinyin = :pinyin WHERE id = :id",
        _open_child,
    )
    _batches(
        f"SELECT id, name FROM guardian WHERE id > :last AND name ~ '{_SEALED}' ORDER BY id",
        "UPDATE guardian SET name = :name WHERE id = :id",
        _open_name,
    )
    for table in ("report", "child"):
        op.drop_index(f"ix_{table}_name_index", table_name=table)
        op.drop_column(table, "name_index")
        op.execute(f"UPDATE {table} SET match_keys = '{{}}' WHERE match_keys <> '{{}}'")
    op.execute("ALTER TABLE report ALTER COLUMN child TYPE jsonb USING child::jsonb")
    op.execute("ALTER TABLE child ALTER COLUMN name TYPE varchar(100)")
    op.execute("ALTER TABLE guardian ALTER COLUMN name TYPE varchar(100)")
