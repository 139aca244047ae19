"""The case's child's age and sex in plain, for the periodic report's figures

Revision ID: 0036
Revises: 0035

`hcase.child_age` (smallint, years) and `hcase.child_sex` (male, female, unknown): what the
case's first report says of the child's age and gender, the inputs of the periodic report's
age band and sex (dispatch.supervision.reports), so the report counts them in SQL instead of
opening every case's sealed child in Python. Never the name: an age and a sex are figures
the report publishes anyway (and all the retention job keeps of an anonymised child).
Intake and the case's correction write them from then on
(workflows.supervision.child_figures); existing cases are filled here in batches, each
case's first report's child opened with the data key.

Chained to 0034 for now (0035 is another branch's): the lead rechains it.
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0036"
down_revision: str | None = "0035"

_BATCH = 2000
_SEXES = ("male", "female", "unknown")
_AGE_MAX = 32767

# The first report of each case after :last (by case id), the cases' own id ascending.
_FIRST_REPORTS = """
    SELECT c.id, r.child
      FROM hcase c
      JOIN LATERAL (SELECT child FROM report WHERE report.case_id = c.id
                     ORDER BY report.id LIMIT 1) r ON true
     WHERE c.id > :last AND r.child IS NOT NULL
     ORDER BY c.id
     LIMIT :batch
"""
_WRITE = """
    UPDATE hcase c SET child_age = v.age, child_sex = v.sex
      FROM unnest(CAST(:ids AS bigint[]), CAST(:ages AS smallint[]), CAST(:sexes AS text[]))
           AS v(id, age, sex)
     WHERE c.id = v.id
"""


def _figures(child: object) -> tuple[int | None, str | None]:
    """workflows.supervision.child_figures as of this revision (a migration keeps its own
    copy of the rule it applies)."""
    child = child if isinstance(child, dict) else {}
    age, sex = child.get("age"), child.get("gender")
    years = None
    if isinstance(age, int) or (isinstance(age, str) and age.isdigit()):
        try:
            years = int(age)
        except ValueError:
            years = None
        if years is not None and not -_AGE_MAX <= years <= _AGE_MAX:
            years = None
    return years, sex if isinstance(sex, str) and sex in _SEXES else None


def upgrade() -> None:
    from db.crypto import open_json

    op.add_column("hcase", sa.Column("child_age", sa.SmallInteger(), nullable=True))
    op.add_column("hcase", sa.Column("child_sex", sa.String(length=10), nullable=True))
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(sa.text(_FIRST_REPORTS), {"last": last, "batch": _BATCH}).all()
        if not rows:
            return
        ids, ages, sexes = [], [], []
        for case_id, token in rows:
            age, sex = _figures(open_json(token))
            if age is not None or sex is not None:
                ids.append(case_id)
                ages.append(age)
                sexes.append(sex)
        if ids:
            conn.execute(sa.text(_WRITE), {"ids": ids, "ages": ages, "sexes": sexes})
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_column("hcase", "child_sex")
    op.drop_column("hcase", "child_age")
