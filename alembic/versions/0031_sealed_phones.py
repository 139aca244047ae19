"""Phone numbers as ciphertext at rest, looked up by their blind index

Revision ID: 0031
Revises: 0030

The reporter's number (`report.reporter_phone`) and every number of the Twilio channels
(SMS threads, messages and opt-outs, calls, call-backs, caller blocks) become text columns
holding AES-GCM ciphertext (db.crypto), as guardians' phones already are; staff phones
(`app_user.phone`) too. Each channel table gets a `phone_index` (the keyed HMAC every lookup
by number compares: threading, STOP, blocks, the caller profile, search), indexed where a
lookup uses it; the opt-out table is keyed by it. Duplicate matching's phone keys in
`match_keys` (`p:<number>` of reports and child files) become `p:<index>`. Existing values
are converted in batches; the downgrade opens them again.
"""

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"

_BATCH = 1000
_SEALED = "'^[0-9a-f]{8}:[A-Za-z0-9_=-]+$'"  # ciphertext's shape: a key id, then base64
# (table, phone column, whether it gets a blind index beside it)
_PHONES = (
    ("report", "reporter_phone", True),
    ("sms_thread", "phone", True),
    ("sms_message", "phone", True),
    ("sms_opt_out", "phone", True),
    ("voice_call", "phone", True),
    ("voice_callback", "phone", True),
    ("caller_block", "phone", True),
    ("app_user", "phone", False),
)
# Old index (name, table, columns) → new one on the blind index.
_INDEXES = (
    ("ix_report_reporter_phone", "report", ["reporter_phone"], "ix_report_phone_index",
     ["phone_index"]),
    ("ix_voice_call_phone", "voice_call", ["phone"], "ix_voice_call_phone_index",
     ["phone_index"]),
    ("ix_caller_block_phone", "caller_block", ["phone"], "ix_caller_block_phone_index",
     ["phone_index"]),
    ("ix_sms_thread_phone_last", "sms_thread", ["phone", "last_message_at"],
     "ix_sms_thread_phone_last", ["phone_index", "last_message_at"]),
)
_PLAIN_KEY = "k LIKE 'p:%' AND k !~ '^p:[0-9a-f]{64}$'"
_INDEX_KEY = "k ~ '^p:[0-9a-f]{64}$'"


def _crypto():
    from db import crypto

    return crypto


def _key(table: str) -> str:
    return "phone" if table == "sms_opt_out" else "id"


def _rows(sql: str, last: object) -> list:
    return op.get_bind().execute(sa.text(sql), {"last": last} if ":last" in sql else {}).all()


def _batches(table: str, column: str, where: str, change: Callable[[tuple], dict]) -> None:
    """Every row whose `column` matches `where`, `_BATCH` at a time, rewritten by `change`
    (a row's key, phone → the new values). Keyed on id; the opt-out table on its number,
    whose rows leave the `where` once rewritten."""
    key = _key(table)
    conn = op.get_bind()
    last: object = 0 if key == "id" else ""
    while True:
        after = f"AND {key} > :last" if key == "id" else ""
        rows = _rows(
            f"SELECT {key}, {column} FROM {table} WHERE {column} <> '' AND ({where}) {after}"
            f" ORDER BY {key} LIMIT {_BATCH}", last,
        )
        if not rows:
            return
        values = [change(row) for row in rows]
        sets = ", ".join(f"{name} = :{name}" for name in values[0] if name != "row_key")
        conn.execute(sa.text(f"UPDATE {table} SET {sets} WHERE {key} = :row_key"), values)
        if key == "id":
            last = rows[-1][0]


def _seal_phones() -> None:
    crypto = _crypto()
    for table, column, indexed in _PHONES:
        def sealed(row: tuple, indexed: bool = indexed, column: str = column) -> dict:
            out = {"row_key": row[0], column: crypto.encrypt(row[1])}
            if indexed:
                out["phone_index"] = crypto.phone_index(row[1])
            return out

        _batches(table, column, f"{column} !~ {_SEALED}", sealed)


def _open_phones() -> None:
    crypto = _crypto()
    for table, column, _ in _PHONES:
        _batches(table, column, f"{column} ~ {_SEALED}",
                 lambda row, column=column: {"row_key": row[0], column: crypto.decrypt(row[1])})


def _rekey(table: str, phones_sql: str, wanted: str, rewrite: Callable[[str, list], str]) -> None:
    """Matching's phone keys of `table` rewritten one way or the other: `phones_sql` gives a
    row's phones (as stored) beside its keys; `wanted` picks the keys to rewrite."""
    conn = op.get_bind()
    last = 0
    while True:
        rows = _rows(
            f"SELECT t.id, t.match_keys, ({phones_sql}) FROM {table} t WHERE t.id > :last"
            f" AND EXISTS (SELECT 1 FROM unnest(t.match_keys) k WHERE {wanted})"
            f" ORDER BY t.id LIMIT {_BATCH}", last,
        )
        if not rows:
            return
        conn.execute(
            sa.text(f"UPDATE {table} SET match_keys = :keys WHERE id = :id"),
            [{"id": row[0], "keys": [rewrite(k, row[2] or []) for k in row[1]]} for row in rows],
        )
        last = rows[-1][0]


_REPORT_PHONES = "SELECT array_remove(ARRAY[t.reporter_phone], NULL)"
_GUARDIAN_PHONES = (
    "SELECT array_agg(g.phone) FROM guardian g WHERE g.child_id = t.id AND g.phone IS NOT NULL"
)


def _keys_to_indexes() -> None:
    crypto = _crypto()

    def rewrite(key: str, phones: list) -> str:
        if key.startswith("p:") and len(key) != 66:
            return "p:" + crypto.phone_index(key[2:])
        return key

    _rekey("report", "NULL", _PLAIN_KEY, rewrite)
    _rekey("child", "NULL", _PLAIN_KEY, rewrite)


def _keys_to_phones() -> None:
    """The way back: an index key becomes the number of the row's own phones it is of
    (the report's reporter, the child's guardians); one of no phone of the row is dropped."""
    crypto = _crypto()

    def rewrite(key: str, sealed: list) -> str:
        if len(key) != 66 or not key.startswith("p:"):
            return key
        phones = {crypto.phone_index(p): p for p in map(crypto.decrypt, sealed)}
        return "p:" + phones.get(key[2:], key[2:])

    _rekey("report", _REPORT_PHONES, _INDEX_KEY, rewrite)
    _rekey("child", _GUARDIAN_PHONES, _INDEX_KEY, rewrite)


def upgrade() -> None:
    for table, column, indexed in _PHONES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE text")
        if indexed:
            op.add_column(table, sa.Column("phone_index", sa.String(64), nullable=True))
    _seal_phones()
    _keys_to_indexes()
    for old, table, _, new, columns in _INDEXES:  # the new index, on the blind index
        op.drop_index(old, table_name=table)
        op.create_index(new, table, columns)
    op.drop_constraint("sms_opt_out_pkey", "sms_opt_out", type_="primary")
    op.alter_column("sms_opt_out", "phone_index", nullable=False)
    op.create_primary_key("sms_opt_out_pkey", "sms_opt_out", ["phone_index"])


def downgrade() -> None:
    op.drop_constraint("sms_opt_out_pkey", "sms_opt_out", type_="primary")
    for _, table, _, new, _ in _INDEXES:
        op.drop_index(new, table_name=table)
    _keys_to_phones()  # while the phones are sealed: it opens them itself
    _open_phones()
    for old, table, columns, _, _ in _INDEXES:
        op.create_index(old, table, columns)
    op.create_primary_key("sms_opt_out_pkey", "sms_opt_out", ["phone"])
    for table, column, indexed in _PHONES:
        if indexed:
            op.drop_column(table, "phone_index")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE varchar(32)")
