"""Empty (reserved for the partner forwards, which landed later as 0005)

Revision ID: 0003
Revises: 0002
"""

revision: str = "0003"
down_revision: str | None = "0002"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
