"""Account lifecycle: an optional TOTP second factor and the last sign-in per staff user

Revision ID: 0026
Revises: 0022

`totp_secret` holds the user's TOTP seed as ciphertext (db.crypto.EncryptedText, the data
key): a dump of the database must not let anyone mint the second factor. `last_login_at`
is shown by `hotline user list` and the accounts page; it is filled from the audit log's
past sign-ins, so the figure is there from the first day.
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0022"


def upgrade() -> None:
    op.add_column("app_user", sa.Column("totp_secret", sa.Text()))
    op.add_column("app_user", sa.Column("last_login_at", sa.DateTime(timezone=True)))
    op.execute(
        "UPDATE app_user u SET last_login_at = a.at FROM"
        " (SELECT actor_id, max(at) AS at FROM audit_log WHERE action = 'auth.login'"
        "  AND actor_id IS NOT NULL GROUP BY actor_id) a WHERE a.actor_id = u.id"
    )


def downgrade() -> None:
    op.drop_column("app_user", "last_login_at")
    op.drop_column("app_user", "totp_secret")
