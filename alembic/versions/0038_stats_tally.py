"""Statistics tally: the statistics page's counts of closed local days, counted once

Revision ID: 0038
Revises: 0037

A scheduler pass (`dispatch.console.stats_tally.build`) counts each closed local day (a
bucket: its start and end instants, `stats_day`) once: cases per viewer × place × risk level,
per category and per channel (`stats_case_tally`), referrals per department × status × the
referral's place × the case's place (`stats_referral_tally`). The viewer is the center ('')
or a department with a live referral on the case, with those referrals' places: the two
ways a scope sees a case (dispatch.staff.scope). The statistics page
(`dispatch.console.stats.figures`) reads the clean buckets of a period and counts the rest
live.

A bucket is dirty while `stats_touched` holds an instant inside it: triggers on `hcase`,
`report` and `referral` write the instants (the case's and the referral's `created_at`)
whose counts a change moves, with the writer's transaction id, so a writer still running
when a pass counts keeps its own row, which that pass cannot see nor delete. The pass runs
in one snapshot (REPEATABLE READ): what it deletes is exactly what it counted.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0038"
down_revision: str | None = "0037"

FUNCTIONS = """
CREATE FUNCTION stats_touch(at timestamptz) RETURNS void LANGUAGE sql AS $$
    INSERT INTO stats_touched (at, xid) SELECT at, txid_current() WHERE at IS NOT NULL
    ON CONFLICT DO NOTHING
$$;

CREATE FUNCTION stats_touch_case() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.created_at, OLD.jurisdiction_code, OLD.risk_level,
                             OLD.categories) IS NOT DISTINCT FROM
                            (NEW.created_at, NEW.jurisdiction_code, NEW.risk_level,
                             NEW.categories) THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        PERFORM stats_touch(OLD.created_at);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM stats_touch(NEW.created_at);
    END IF;
    -- The referral tally keeps the case's place.
    IF TG_OP = 'UPDATE' AND OLD.jurisdiction_code IS DISTINCT FROM NEW.jurisdiction_code THEN
        PERFORM stats_touch(r.created_at) FROM referral r WHERE r.case_id = NEW.id;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION stats_touch_report() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.case_id, OLD.channel) IS NOT DISTINCT FROM
                            (NEW.case_id, NEW.channel) THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        PERFORM stats_touch((SELECT created_at FROM hcase WHERE id = OLD.case_id));
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM stats_touch((SELECT created_at FROM hcase WHERE id = NEW.case_id));
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION stats_touch_referral() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.case_id, OLD.department_code, OLD.jurisdiction_code,
                             OLD.status, OLD.created_at) IS NOT DISTINCT FROM
                            (NEW.case_id, NEW.department_code, NEW.jurisdiction_code,
                             NEW.status, NEW.created_at) THEN
        RETURN NULL;
    END IF;
    -- The referral's own counts, and its case's (a department sees a case through it).
    IF TG_OP <> 'INSERT' THEN
        PERFORM stats_touch(OLD.created_at);
        PERFORM stats_touch((SELECT created_at FROM hcase WHERE id = OLD.case_id));
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM stats_touch(NEW.created_at);
        PERFORM stats_touch((SELECT created_at FROM hcase WHERE id = NEW.case_id));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER hcase_stats_touch
AFTER INSERT OR DELETE OR UPDATE OF created_at, jurisdiction_code, risk_level, categories
ON hcase FOR EACH ROW EXECUTE FUNCTION stats_touch_case();

CREATE TRIGGER report_stats_touch AFTER INSERT OR DELETE OR UPDATE OF case_id, channel
ON report FOR EACH ROW EXECUTE FUNCTION stats_touch_report();

CREATE TRIGGER referral_stats_touch
AFTER INSERT OR DELETE OR UPDATE OF case_id, department_code, jurisdiction_code, status,
                                    created_at
ON referral FOR EACH ROW EXECUTE FUNCTION stats_touch_referral();
"""


def _ts(name: str, **kw) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), **kw)


def upgrade() -> None:
    op.create_table(
        "stats_day",
        _ts("day_start", primary_key=True),
        _ts("day_end", nullable=False),
        _ts("counted_at", nullable=False),
    )
    op.create_table(
        "stats_case_tally",
        _ts("day_start", nullable=False),
        sa.Column("viewer", sa.String(40), nullable=False),
        sa.Column("places", ARRAY(sa.String)),
        sa.Column("jurisdiction_code", sa.String),
        sa.Column("risk_level", sa.String(10)),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("key", sa.String),
        sa.Column("n", sa.Integer, nullable=False),
    )
    op.create_index("ix_stats_case_tally_viewer_day", "stats_case_tally", ["viewer", "day_start"])
    op.create_index("ix_stats_case_tally_day", "stats_case_tally", ["day_start"])
    op.create_table(
        "stats_referral_tally",
        _ts("day_start", nullable=False),
        sa.Column("department_code", sa.String, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("jurisdiction_code", sa.String),
        sa.Column("case_jurisdiction", sa.String),
        sa.Column("n", sa.Integer, nullable=False),
    )
    op.create_index("ix_stats_referral_tally_day", "stats_referral_tally", ["day_start"])
    op.create_table(
        "stats_touched",
        _ts("at", primary_key=True),
        sa.Column("xid", sa.BigInteger, primary_key=True),
    )
    for statement in FUNCTIONS.strip().split(";\n\n"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS referral_stats_touch ON referral")
    op.execute("DROP TRIGGER IF EXISTS report_stats_touch ON report")
    op.execute("DROP TRIGGER IF EXISTS hcase_stats_touch ON hcase")
    for name in ("stats_touch_referral", "stats_touch_report", "stats_touch_case"):
        op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.execute("DROP FUNCTION IF EXISTS stats_touch(timestamptz)")
    for table in ("stats_touched", "stats_referral_tally", "stats_case_tally", "stats_day"):
        op.drop_table(table)
