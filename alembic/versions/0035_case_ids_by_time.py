"""Case and report ids by time: bigint, not sequential

Revision ID: 0035
Revises: 0034

POST /api/v1/reports and the partners' forwards answer the new case's (and report's) id.
With serials a reporter who files twice learned how many reports came in between, and the
next id was a guess away. New ids still sort by time (every ORDER BY id, `before_id` page
and console list keeps its meaning) but say nothing of volume:

    id = (milliseconds since 2026-01-01 UTC) << 12 | P(nextval(sequence) mod 4096)

P is a 4-round Feistel permutation of 12 bits keyed by `id_key` (four random 32-bit round
keys made here, once per database; not in code, not readable by the service's role: the
function is SECURITY DEFINER). Ids are unique unless 4,096 rows of one table arrive in one
millisecond; rows of the same millisecond sort in no particular order among themselves (an
intake takes a few, so one client's reports keep their order). The ids stay
below 2**53 (JavaScript's safe integers) until 2095-09-07 (2**41 milliseconds after 2026).
The round function is PostgreSQL's seeded integer hash (hashint4extended): were a major
version to change it, only ids of the same millisecond could meet, which a restart spans.

`hcase.id`, `report.id` and every column holding one of them (all are foreign keys; the
audit log's `object_id` is text) become bigint. Old rows keep their ids; every new id is
larger (2026-12 gives ~1.9e14, the old serials stay below 2**31). Each altered table is
rewritten under an exclusive lock: run it in a quiet hour on a large database.

Downgrade goes back to integer serials and refuses while a new id exists (it would not fit).
"""

import secrets

from alembic import op

revision: str = "0035"
down_revision: str | None = "0034"

# Every column that holds a case id or a report id as of this revision (the catalog's
# foreign keys to hcase.id and report.id; tests/ops/test_case_ids.py checks none is left).
CASE_ID_COLUMNS = (
    ("hcase", "merged_into_id"),
    ("hcase", "likely_duplicate_of"),
    ("report", "case_id"),
    ("call_wrapup", "case_id"),
    ("case_assessment", "case_id"),
    ("case_assignment", "case_id"),
    ("case_child", "case_id"),
    ("case_conference", "case_id"),
    ("case_event", "case_id"),
    ("case_meeting", "case_id"),
    ("case_plan", "case_id"),
    ("child_event", "case_id"),
    ("forward_satisfaction", "case_id"),
    ("guardian_intervention", "case_id"),
    ("key_case", "case_id"),
    ("key_case_minute", "case_id"),
    ("notification", "case_id"),
    ("partner_message", "case_id"),
    ("placement", "case_id"),
    ("referral", "case_id"),
    ("sms_thread", "case_id"),
    ("supervision_note", "case_id"),
    ("supervision_order", "case_id"),
    ("task", "case_id"),
    ("triage_example", "case_id"),
    ("visit", "case_id"),
    ("voice_call", "case_id"),
    ("voice_callback", "case_id"),
)
REPORT_ID_COLUMNS = (
    ("forward_satisfaction", "report_id"),
    ("partner_message", "report_id"),
    ("report_no_contact", "report_id"),
    ("sms_thread", "report_id"),
    ("voice_call", "report_id"),
)
TABLES = ("hcase", "report")

EPOCH = "2026-01-01 00:00:00+00"

PERMUTE = """
CREATE FUNCTION hotline_permute12(x integer) RETURNS integer
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k integer[];
    l integer := (x >> 6) & 63;
    r integer := x & 63;
    t integer;
BEGIN
    SELECT rounds INTO STRICT k FROM public.id_key WHERE id = 1;
    FOR i IN 1..4 LOOP
        t := r;
        r := l # ((hashint4extended(r, k[i]::bigint) & 63)::integer);
        l := t;
    END LOOP;
    RETURN (l << 6) | r;
END $$
"""

NEXT_ID = f"""
CREATE FUNCTION hotline_next_id(seq regclass) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN (floor(extract(epoch FROM clock_timestamp() - timestamptz '{EPOCH}') * 1000)::bigint
            << 12)
           | public.hotline_permute12((nextval(seq) % 4096)::integer);
END $$
"""


def upgrade() -> None:
    op.execute(
        "CREATE TABLE id_key (id smallint PRIMARY KEY CHECK (id = 1), "
        "rounds integer[] NOT NULL CHECK (cardinality(rounds) = 4))"
    )
    rounds = ", ".join(str(secrets.randbits(31)) for _ in range(4))
    op.execute(f"INSERT INTO id_key (id, rounds) VALUES (1, ARRAY[{rounds}])")
    op.execute(PERMUTE)
    op.execute("REVOKE ALL ON FUNCTION hotline_permute12(integer) FROM PUBLIC")
    op.execute(NEXT_ID)
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN id TYPE bigint")
        op.execute(f"ALTER SEQUENCE {table}_id_seq AS bigint")
    for table, column in CASE_ID_COLUMNS + REPORT_ID_COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE bigint")
    for table in TABLES:
        op.execute(
            f"ALTER TABLE {table} ALTER COLUMN id "
            f"SET DEFAULT hotline_next_id('{table}_id_seq'::regclass)"
        )


def downgrade() -> None:
    op.execute(
        """
        DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM hcase WHERE id > 2147483647)
           OR EXISTS (SELECT 1 FROM report WHERE id > 2147483647) THEN
            RAISE EXCEPTION '0035 downgrade: cases or reports with time-based ids exist; '
                'they do not fit an integer (降级失败：已有按时间编号的案件或报告)';
        END IF;
        END $$
        """
    )
    for table in TABLES:
        op.execute(
            f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{table}_id_seq'::regclass)"
        )
    for table, column in CASE_ID_COLUMNS + REPORT_ID_COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE integer")
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN id TYPE integer")
        op.execute(f"ALTER SEQUENCE {table}_id_seq AS integer")
    op.execute("DROP FUNCTION hotline_next_id(regclass)")
    op.execute("DROP FUNCTION hotline_permute12(integer)")
    op.execute("DROP TABLE id_key")
