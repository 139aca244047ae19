"""The retention job (issue 14) over 100,000 cases on a scratch database: the dry run's
counts, the real run (anonymising, blanking SMS bodies, deleting recordings at a local fake
Twilio and done outbox rows), the longest batch transaction, and a second run that finds
nothing left to do.

    python -m bench.bench_retention --admin-url postgresql://postgres@127.0.0.1:5432/test

The seed spreads the cases over twelve years: 15% 不予受理, 5% judged not a case and never
registered, 50% closed (half with a child file, birth dates spread so some children are
long grown and some not), 5% merged into a closed case, 25% still open; every case one
report full of personal data and its timeline; one in five an SMS thread of two messages;
one in a hundred a call with a recording; plus 100,000 done outbox rows a month old.
Times are of the job's functions called in-process (dispatch.retention.job), as the
scheduler and `hotline retention` call them; Twilio is the tests' fake on localhost, so the
recording figure is our side of it, not Twilio's latency.
"""

import argparse
import asyncio
import time
from datetime import UTC, datetime

import asyncpg

from bench.service import scratch_database
from db.crypto import encrypt, seal_json
from db.engine import make_engine, make_sessionmaker
from db.settings import Settings
from dispatch.ops import schema
from dispatch.retention.job import count_due, run_retention
from tests.fixtures.twilio_fake import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio
from workflows.retention import MARK, periods

SEED = """
INSERT INTO hcase (id, state, risk_level, categories, emergency, mandatory, jurisdiction_code,
                   not_a_case, merged_into_id, assessment, created_at, updated_at)
SELECT n,
       CASE WHEN n % 20 < 3 THEN 'invalid' WHEN n % 20 = 3 THEN 'discovered'
            WHEN n % 20 < 14 THEN 'closed' WHEN n % 20 = 14 THEN 'merged'
            ELSE (ARRAY['assessing','handling','following_up'])[1 + n % 3] END,
       (ARRAY['red','orange','yellow','blue'])[1 + n % 4],
       ARRAY[(ARRAY['guardianship_absent', 'left_behind', 'domestic_violence',
                    'bullying'])[1 + n % 4]],
       false, n % 3 = 0, (ARRAY['990102001001','990103001001','990104001001'])[1 + n % 3],
       CASE WHEN n % 20 = 3 THEN 'consultation' END,
       CASE WHEN n % 20 = 14 THEN n - 1 END,
       jsonb_build_object('risk_level', 'yellow', 'needs', '[]'::jsonb, 'notes', '父亲酗酒'),
       $1::timestamptz - (n % 4380) * interval '1 day',
       $1::timestamptz - (n % 4380) * interval '1 day' + interval '1 hour'
  FROM generate_series(1, $2) n;

SELECT setval(pg_get_serial_sequence('hcase', 'id'), $2);

INSERT INTO report (channel, external_id, receipt_code, case_id, reporter, reporter_phone,
                    situations, categories, child, jurisdiction_code, address, description,
                    in_danger_now, raw, judgement, match_keys, fingerprint, created_at)
SELECT 'webform', 'bench-' || c.id, 'B' || lpad((c.id % 10000000000)::text, 10, '0'), c.id,
       jsonb_build_object('name', '李老师', 'phone', '+86138' || lpad(c.id::text, 8, '0')),
       '+86138' || lpad(c.id::text, 8, '0'), '{4}', c.categories,
       $3, c.jurisdiction_code, '幸福里小区' || (c.id % 40) || '栋',
       '学生身上多处淤青，称父亲酒后殴打，已持续数周。编号' || c.id, false,
       jsonb_build_object('form', '...'),
       jsonb_build_object('labels', '{}'::jsonb, 'evidence', jsonb_build_object('x', '淤青')),
       ARRAY['n:wangxiaoming' || c.id], md5('bench' || c.id), c.created_at
  FROM hcase c;

INSERT INTO case_event (case_id, event, actor, to_state, reason, created_at)
SELECT c.id, 'intake', 'public', 'discovered', NULL, c.created_at FROM hcase c;

INSERT INTO case_event (case_id, event, actor, from_state, to_state, reason, created_at)
SELECT c.id, 'close', 'bench', 'following_up', 'closed', '帮扶完成，王小明已回到父母身边',
       c.created_at + interval '30 days'
  FROM hcase c WHERE c.state = 'closed';

INSERT INTO child (id, name, gender, birth_date, id_number, address, jurisdiction_code,
                   categories, match_keys, created_at, updated_at)
SELECT c.id, $4, 'male',
       (c.created_at - (3 + c.id % 15) * interval '1 year')::date,
       '1101012000010' || lpad((c.id % 100000)::text, 5, '0'), '幸福里小区',
       c.jurisdiction_code, c.categories, '{}', c.created_at, c.created_at
  FROM hcase c WHERE c.state = 'closed' AND c.id % 2 = 0;

SELECT setval(pg_get_serial_sequence('child', 'id'), $2);

INSERT INTO guardian (child_id, relation, name, phone, state)
SELECT ch.id, '母亲', $5, '+8613900139000', 'present' FROM child ch;

INSERT INTO case_child (case_id, child_id, linked_by, linked_at)
SELECT ch.id, ch.id, 'bench', ch.created_at FROM child ch;

INSERT INTO sms_thread (phone, report_id, case_id, opened_at, last_message_at)
SELECT r.reporter_phone, r.id, r.case_id, r.created_at, r.created_at
  FROM report r WHERE r.case_id % 5 = 0;

INSERT INTO sms_message (thread_id, direction, kind, phone, body, status, attempts,
                         created_at, updated_at)
SELECT t.id, 'in', (ARRAY['report','followup'])[k], t.phone,
       '我家孩子被打了，在幸福里小区' || t.id, 'received', 0, t.opened_at, t.opened_at
  FROM sms_thread t CROSS JOIN generate_series(1, 2) k;

INSERT INTO voice_call (call_sid, phone, status, route, recording_sid, recording_url,
                        recording_seconds, case_id, created_at, updated_at)
SELECT 'CA' || md5(c.id::text), '+86137' || lpad(c.id::text, 8, '0'), 'completed', 'open',
       'RE' || md5(c.id::text), 'https://api.twilio.com/Recordings/RE' || md5(c.id::text),
       40, c.id, c.created_at, c.created_at
  FROM hcase c WHERE c.id % 100 = 0;

INSERT INTO outbox (topic, payload, created_at, available_at, relayed_at, done_at, attempts)
SELECT 'bench.done', '{}', $1::timestamptz - interval '30 days',
       $1::timestamptz - interval '30 days', $1::timestamptz - interval '30 days',
       $1::timestamptz - interval '30 days', 1
  FROM generate_series(1, $2)
"""


async def seed(url: str, cases: int, now: datetime) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            # The sealed columns get one ciphertext each (as the service writes them).
            values = ((1, now), (2, cases),
                      (3, seal_json({"name": "王小明", "age": 9, "gender": "male"})),
                      (4, encrypt("王小明")), (5, encrypt("钱芳")))
            for statement in SEED.split(";\n\n"):
                used = [(n, a) for n, a in values if f"${n}" in statement]
                for new, (old, _) in enumerate(used, 1):  # asyncpg numbers from $1
                    statement = statement.replace(f"${old}", f"${new}")
                await conn.execute(statement, *[a for _, a in used])
        await conn.execute("ANALYZE")
        return {
            table: await conn.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608
            for table in ("hcase", "report", "case_event", "child", "sms_message",
                          "voice_call", "outbox")
        }
    finally:
        await conn.close()


async def measure(url: str, now: datetime) -> None:
    fake = FakeTwilio()
    fake.start()
    settings = Settings().model_copy(update={
        "twilio_account_sid": ACCOUNT_SID, "twilio_auth_token": AUTH_TOKEN,
        "twilio_from_number": FROM_NUMBER, "twilio_api_base_url": fake.url,
    })
    engine = make_engine(url, pool_size=2)
    sessions = make_sessionmaker(engine)
    try:
        began = time.perf_counter()
        dry = await run_retention(sessions, settings, now, dry_run=True)
        print(f"dry run: {time.perf_counter() - began:.2f} s  {dry.counts}")
        began = time.perf_counter()
        done = await run_retention(sessions, settings, now)
        elapsed = time.perf_counter() - began
        cases = sum(done.counts[k] for k in ("non_case", "closed_case", "merged_case"))
        print(f"run: {elapsed:.2f} s  {done.counts}  failed {done.failed}")
        print(f"  seconds per kind: {done.seconds}")
        print(f"  {cases / elapsed:.0f} cases anonymised per second overall;"
              f" longest batch transaction {done.longest_batch:.2f} s"
              f" (batch {periods().batch}); {len(fake.deleted)} recordings deleted at the fake")
        began = time.perf_counter()
        again = await run_retention(sessions, settings, now)
        print(f"second run: {time.perf_counter() - began:.2f} s  {again.counts}")
        async with sessions() as session:
            left = await count_due(session, {
                **_cutoffs(now), "mark": MARK, "after": 0})
        print(f"left past its period: {left}")
    finally:
        await engine.dispose()
        fake.stop()


def _cutoffs(now: datetime) -> dict:
    from datetime import timedelta

    from workflows.retention import Cutoffs

    cut = Cutoffs.at(now, periods())
    return {"non_case": cut.non_case, "closed_adult": cut.closed_adult,
            "closed_no_age": cut.closed_no_age, "sms_body": cut.sms_body,
            "recording": cut.recording, "outbox": now - timedelta(hours=168)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--cases", type=int, default=100_000)
    args = parser.parse_args()
    now = datetime.now(UTC)
    with scratch_database(args.admin_url) as url:
        schema.migrate(url)
        began = time.perf_counter()
        counts = asyncio.run(seed(url, args.cases, now))
        print(f"seeded in {time.perf_counter() - began:.0f} s: {counts}")
        asyncio.run(measure(url, now))


if __name__ == "__main__":
    main()
