"""Reporters' identities, partners' raw payloads, SMS bodies and voicemail links as
ciphertext at rest

Revision ID: 0030
Revises: 0029

`report.reporter` (who reported: name, unit, role, phone), `report.raw` (a partner's
order, the SMS or call parameters as received, with names, phones and addresses in them),
`sms_message.body` (what a child or a neighbour wrote) and `voice_call.recording_url`
(anyone holding the link and Twilio's key hears the voicemail) become text columns holding
AES-GCM ciphertext under the data key (db.crypto), as the child file's ID numbers already
are. `report.reporter_phone` stays plain for now: threading, blocks and the caller profile
look it up by equality (a blind index is the next step). Existing values are sealed here,
in batches; the downgrade opens them again.
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"

_BATCH = 1000
# (table, column, whether a value is still plain): JSON starts with a bracket or quote,
# a link with its scheme; ciphertext starts with a key id.
_PLAIN = {
    ("report", "reporter"): "left(reporter, 1) IN ('{', '[', '\"')",
    ("report", "raw"): "left(raw, 1) IN ('{', '[', '\"')",
    ("voice_call", "recording_url"): "recording_url LIKE 'http%'",
    # Any text can be an SMS: plain is what does not have ciphertext's shape (empty stays).
    ("sms_message", "body"): "body <> '' AND body !~ '^[0-9a-f]{8}:[A-Za-z0-9_=-]+$'",
}


def _convert(change) -> None:
    conn = op.get_bind()
    for (table, column), plain in _PLAIN.items():
        last = 0
        while True:
            rows = conn.execute(sa.text(
                f"SELECT id, {column} FROM {table} WHERE id > :last AND {column} <> ''"
                f" AND ({plain}) = :plain ORDER BY id LIMIT {_BATCH}"
            ), {"last": last, "plain": change is _seal}).all()
            if not rows:
                break
            conn.execute(
                sa.text(f"UPDATE {table} SET {column} = :value WHERE id = :id"),
                [{"id": row[0], "value": change(row[1])} for row in rows],
            )
            last = rows[-1][0]


def _seal(value: str) -> str:
    from db.crypto import encrypt

    return encrypt(value)


def _open(value: str) -> str:
    from db.crypto import decrypt

    return decrypt(value)


def upgrade() -> None:
    op.execute("ALTER TABLE report ALTER COLUMN reporter TYPE text USING reporter::text")
    op.execute("ALTER TABLE report ALTER COLUMN raw TYPE text USING raw::text")
    op.execute("ALTER TABLE voice_call ALTER COLUMN recording_url TYPE text")
    op.execute("ALTER TABLE sms_message ALTER COLUMN body TYPE text")
    _convert(_seal)


def downgrade() -> None:
    _convert(_open)
    op.execute("ALTER TABLE report ALTER COLUMN reporter TYPE jsonb USING reporter::jsonb")
    op.execute("ALTER TABLE report ALTER COLUMN raw TYPE jsonb USING raw::jsonb")
    op.execute("ALTER TABLE voice_call ALTER COLUMN recording_url TYPE varchar(400)")
    op.execute("ALTER TABLE sms_message ALTER COLUMN body TYPE varchar")
