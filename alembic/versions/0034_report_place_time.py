"""Report place and time: a btree on report(jurisdiction_code, created_at)

Revision ID: 0034
Revises: 0030

The place-and-week blocking keys of an unnamed child (`w:<place>:<week>`) each hold every
report of a place in a week: ~260 at 100,000 cases, ~780 for the three weeks a `similar`
call looks at, all fetched and sorted to keep 100. With this index the call walks the
place's reports outward in time from the report's own moment and stops after the nearest
few (dispatch.children.service). Built CONCURRENTLY: intake keeps writing reports while it
builds on a large table. No rows change.
"""

from alembic import op

revision: str = "0034"
down_revision: str | None = "0033"

INDEX = "ix_report_place_time"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(INDEX, "report", ["jurisdiction_code", "created_at"],
                        postgresql_concurrently=True, if_not_exists=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(INDEX, "report", postgresql_concurrently=True, if_exists=True)
