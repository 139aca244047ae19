"""The retention job: what `hotline retention` and the scheduler's daily pass run.

Each kind (workflows.retention.KINDS) has one query for the rows past their period; the dry
run counts them, the real run takes them a batch at a time, each batch in its own short
transaction (locked with SKIP LOCKED, so two runs share the work and the API is never
blocked for long) that marks what it did in the same rows: a run that stops resumes where
it left off, and a second run finds nothing left. Every batch writes one audit row with
its kind, its count and the case ids; every anonymised case gets an `anonymised` entry on
its timeline. Logs carry counts only, never a name, number or text.

Cases are anonymised, not deleted: the statistics need their category, dates, jurisdiction
and risk level (and the timeline's codes), so those stay; names, phones, addresses,
descriptions, SMS bodies, raw payloads, free-text notes and the child file's ID numbers are
blanked or replaced by the marker. What has no statistical use is deleted: done outbox
rows, a case's labelled triage examples (a marker would only pollute the training set),
and recordings, at Twilio through its API (the call row keeps the sid and the deletion
time as the record). A case on legal hold is skipped by every kind, its recordings too.
A child file is anonymised with the last of its cases, so a held or still-kept case keeps
the child it is about.
"""

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.voice.recordings import delete_recording
from db.crypto import seal_json
from db.engine import transaction
from db.models import Report
from db.settings import Settings
from db.timeline import insert_events
from workflows import config
from workflows.retention import KIND_LABELS, KINDS, MARK, Cutoffs, Periods, periods, run_day

log = logging.getLogger("hotline.retention")
ACTOR = "system:retention"
ENDED = "('closed', 'invalid', 'merged')"

# The rows past their period, per kind (the id first). `{lock}` is the batch's locking.
_ELIGIBLE = {
    "non_case": """
        SELECT c.id FROM hcase c
        WHERE c.anonymised_at IS NULL AND c.legal_hold_at IS NULL
          AND (c.state = 'invalid' OR (c.state = 'discovered' AND c.not_a_case IS NOT NULL))
          AND c.updated_at < :non_case
          AND NOT EXISTS (SELECT 1 FROM case_event e
                          WHERE e.case_id = c.id AND e.created_at >= :non_case)
          AND NOT EXISTS (SELECT 1 FROM report r
                          WHERE r.case_id = c.id AND r.created_at >= :non_case)
    """,
    # Kept until N years after the youngest child turns 18, and N years after closing;
    # when a child's age is unknown, until the fixed years after closing as well.
    "closed_case": """
        SELECT c.id FROM hcase c
        CROSS JOIN LATERAL (
            SELECT coalesce(max(e.created_at), c.updated_at) AS closed_at FROM case_event e
            WHERE e.case_id = c.id AND e.to_state = 'closed') z
        CROSS JOIN LATERAL (
            SELECT max(k.adult) AS adult_on, coalesce(bool_or(k.adult IS NULL), false) AS unknown
            FROM (SELECT coalesce(ch.birth_date + interval '18 years',
                                  ch.age_given_on + make_interval(years => 18 - ch.age)
                                 )::timestamptz AS adult
                  FROM case_child cc JOIN child ch ON ch.id = cc.child_id
                  WHERE cc.case_id = c.id) k) a
        WHERE c.state = 'closed' AND c.anonymised_at IS NULL AND c.legal_hold_at IS NULL
          AND (a.adult_on IS NOT NULL AND NOT a.unknown OR z.closed_at < :closed_no_age)
          AND (a.adult_on IS NULL OR greatest(z.closed_at, a.adult_on) < :closed_adult)
    """,
    # A merged case goes with the case it was merged into. The target is looked up by its
    # key (a scalar subquery): a join is planned on statistics taken before this run
    # anonymised thousands of cases, and picked a nested loop that ran for minutes.
    "merged_case": """
        SELECT c.id FROM hcase c
        WHERE c.state = 'merged' AND c.anonymised_at IS NULL AND c.legal_hold_at IS NULL
          AND (SELECT t.anonymised_at FROM hcase t WHERE t.id = c.merged_into_id) IS NOT NULL
    """,
    "sms_body": f"""
        SELECT m.id FROM sms_message m
        JOIN sms_thread t ON t.id = m.thread_id JOIN hcase c ON c.id = t.case_id
        WHERE c.state IN {ENDED} AND c.legal_hold_at IS NULL AND c.anonymised_at IS NULL
          AND m.created_at < :sms_body AND m.body <> ''
    """,
    # An anonymised case's recordings go at once; others once past their period, when the
    # case has ended (or there is none) and no call-back is owed.
    "recording": f"""
        SELECT v.id, v.recording_sid FROM voice_call v LEFT JOIN hcase c ON c.id = v.case_id
        WHERE v.recording_sid IS NOT NULL AND v.recording_deleted_at IS NULL
          AND c.legal_hold_at IS NULL AND v.id > :after
          AND (c.anonymised_at IS NOT NULL OR (
                v.created_at < :recording AND (c.id IS NULL OR c.state IN {ENDED})
                AND NOT EXISTS (SELECT 1 FROM voice_callback b
                                WHERE b.call_id = v.id AND b.status = 'pending')))
    """,
    "outbox": "SELECT o.id FROM outbox o WHERE o.done_at < :outbox",
}
_LOCK = {
    "non_case": "FOR UPDATE OF c SKIP LOCKED",
    "closed_case": "FOR UPDATE OF c SKIP LOCKED",
    "merged_case": "FOR UPDATE OF c SKIP LOCKED",
    "sms_body": "FOR UPDATE OF m SKIP LOCKED",
    "recording": "",  # the Twilio calls run outside any transaction; deleting twice is a 404
    "outbox": "FOR UPDATE SKIP LOCKED",
}
CASE_KINDS = ("non_case", "closed_case", "merged_case")


def _blank(table: str, key: str, marked: tuple[str, ...] = (), nulled: tuple[str, ...] = ()) -> str:
    """An UPDATE giving the texts of the batch's cases the marker (an empty one stays
    empty) and clearing the others."""
    sets = [f"{c} = CASE WHEN {c} IS NULL OR {c} = '' THEN {c} ELSE :mark END" for c in marked]
    sets += [f"{c} = NULL" for c in nulled]
    return f"UPDATE {table} SET {', '.join(sets)} WHERE {key} = ANY(:ids)"


_THREADS = "(SELECT id FROM sms_thread WHERE case_id = ANY(:ids))"
_ANONYMISE_CASES = (
    """UPDATE hcase SET anonymised_at = :now,
         assessment = CASE WHEN assessment IS NULL THEN NULL ELSE jsonb_strip_nulls(
           jsonb_build_object('risk_level', assessment->'risk_level',
                              'needs', assessment->'needs',
                              'assessed_at', assessment->'assessed_at')) END
       WHERE id = ANY(:ids)""",
    # The child is ciphertext: cut to its age and gender in Python (`_kept_children`).
    """UPDATE report SET reporter = NULL, reporter_phone = NULL, phone_index = NULL,
         address = NULL,
         child = (SELECT k.child FROM unnest(CAST(:kept_rows AS bigint[]),
                                             CAST(:kept_children AS text[])) AS k(id, child)
                  WHERE k.id = report.id),
         description = :mark, raw = NULL, judgement = judgement - 'evidence',
         match_keys = '{}', name_index = '{}', fingerprint = NULL, content_fingerprint = NULL
       WHERE case_id = ANY(:ids)""",
    _blank("case_event", "case_id", ("reason",)),
    _blank("referral", "case_id", ("outcome", "return_reason", "withdraw_reason")),
    _blank("visit", "case_id", ("findings",)),
    _blank("notification", "case_id", ("text",)),
    _blank("task", "case_id", ("title", "detail", "outcome", "cancel_reason")),
    _blank("case_plan", "case_id", ("reason",)),
    _blank("call_wrapup", "case_id", ("note",)),
    _blank("case_assessment", "case_id", ("override_reason", "summary")),
    _blank("placement", "case_id", ("body", "note")),
    _blank("guardian_intervention", "case_id", ("document", "note", "skip_reason")),
    _blank("case_meeting", "case_id", ("agenda",), ("place",)),
    _blank("case_conference", "case_id", ("participants", "notes", "decisions")),
    _blank("forward_satisfaction", "case_id", ("comment",)),
    _blank("supervision_order", "case_id", ("reason", "answer", "comment")),
    _blank("key_case", "case_id", ("reason", "clear_reason")),
    _blank("key_case_minute", "case_id", ("minutes", "decisions")),
    """UPDATE supervision_note SET findings = :mark,
         actions = CASE WHEN jsonb_typeof(actions) = 'array' THEN (
           SELECT coalesce(jsonb_agg(a - 'text'), '[]'::jsonb) FROM jsonb_array_elements(actions) a)
           ELSE actions END
       WHERE case_id = ANY(:ids)""",
    """UPDATE partner_message SET body = '{"anonymised": true}'::jsonb
       WHERE case_id = ANY(:ids)""",
    # SMS bodies are ciphertext (db.crypto): cleared to empty, which stays empty, not marked.
    f"""UPDATE sms_message SET phone = '', phone_index = NULL, body = '', reply = NULL,
         media = NULL
       WHERE thread_id IN {_THREADS}""",
    "UPDATE sms_thread SET phone = '', phone_index = NULL WHERE case_id = ANY(:ids)",
    "UPDATE voice_call SET phone = NULL, phone_index = NULL WHERE case_id = ANY(:ids)",
    """UPDATE voice_callback SET phone = '', phone_index = NULL,
         note = CASE WHEN note IS NULL OR note = '' THEN note ELSE :mark END
       WHERE case_id = ANY(:ids)""",
    "DELETE FROM triage_example WHERE case_id = ANY(:ids)",
)
# Child files whose every case is now anonymised (run after the statements above).
_CHILDREN_DONE = """
    SELECT DISTINCT cc.child_id FROM case_child cc
    WHERE cc.case_id = ANY(:ids) AND NOT EXISTS (
        SELECT 1 FROM case_child o JOIN hcase h ON h.id = o.case_id
        WHERE o.child_id = cc.child_id AND h.anonymised_at IS NULL)
"""
_ANONYMISE_CHILDREN = (
    """UPDATE child SET name = NULL, name_index = '{}', id_number = NULL, id_index = NULL,
         birth_date = date_trunc('year', birth_date)::date, hukou = NULL, address = NULL,
         school = NULL, school_class = NULL, match_keys = '{}', updated_at = :now
       WHERE id = ANY(:ids)""",
    "UPDATE guardian SET name = NULL, phone = NULL, phone_index = NULL WHERE child_id = ANY(:ids)",
    _blank("child_event", "child_id", ("reason",)),
)
_TIMELINE = insert_events(
    ("case_id", "event", "actor", "data", "created_at"),
    """SELECT id, 'anonymised', :actor, jsonb_build_object('kind', CAST(:kind AS text)), :now
    FROM unnest(CAST(:ids AS bigint[])) AS id""",
)
_AUDIT = text(
    "INSERT INTO audit_log (actor, action, object_type, detail)"
    " VALUES (:actor, :action, :type, :detail)"
).bindparams(bindparam("detail", type_=JSONB))


@dataclass
class Outcome:
    """Per kind: rows done (or, in a dry run, that would be), and those that failed."""

    dry_run: bool
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    failed: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # kinds that could not run, and why
    # The longest batch transaction (seconds): how long the job held its rows' locks; and
    # the time each kind took, for the log and the bench.
    longest_batch: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        verb = "将处理" if self.dry_run else "已处理"
        out = [f"{KIND_LABELS[k]}：{verb} {self.counts[k]}" for k in KINDS]
        out += [f"{KIND_LABELS[k]}：失败 {n}（下次运行重试）" for k, n in self.failed.items() if n]
        return out + self.skipped


def _params(now: datetime, p: Periods, outbox_retention: timedelta) -> dict[str, Any]:
    cut = Cutoffs.at(now, p)
    return {
        "non_case": cut.non_case,
        "closed_adult": cut.closed_adult,
        "closed_no_age": cut.closed_no_age,
        "sms_body": cut.sms_body,
        "recording": cut.recording,
        "outbox": now - outbox_retention,
        "mark": MARK,
        "after": 0,
    }


def _used(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """Only the parameters the statement names (asyncpg refuses unused ones)."""
    return {k: v for k, v in params.items() if f":{k}" in sql}


async def _audit(session: AsyncSession, action: str, detail: dict[str, Any]) -> None:
    await session.execute(
        _AUDIT, {"actor": ACTOR, "action": action, "type": "retention", "detail": detail}
    )


async def count_due(
    session: AsyncSession, params: dict[str, Any], kinds: tuple[str, ...] = KINDS
) -> dict[str, int]:
    """The dry run: how many rows of each kind are past their period now (reads only). The
    kinds overlap as the run would see them: SMS bodies and recordings of cases the run
    anonymises are counted under their own kind here, and the merged cases that follow
    a target anonymised by this run are counted next time."""
    counts = {}
    for kind in kinds:
        sql = f"SELECT count(*) FROM ({_ELIGIBLE[kind]}) due"
        counts[kind] = int(await session.scalar(text(sql), _used(sql, params)) or 0)
    return counts


async def _batch_ids(session: AsyncSession, kind: str, params: dict[str, Any], limit: int) -> list:
    sql = f"{_ELIGIBLE[kind]} ORDER BY 1 LIMIT :limit {_LOCK[kind]}"
    rows = await session.execute(text(sql), {**_used(sql, params), "limit": limit})
    return list(rows.all())


async def _kept_children(session: AsyncSession, case_ids: list[int]) -> dict[str, list]:
    """What the reports said of the child, cut to its age and gender (the statistics'),
    sealed again: the report statement's :kept_rows and :kept_children."""
    rows = (await session.execute(
        select(Report.id, Report.child)
        .where(Report.case_id.in_(case_ids), Report.child.is_not(None))
    )).all()
    return {
        "kept_rows": [row_id for row_id, _ in rows],
        "kept_children": [seal_json({k: child[k] for k in ("age", "gender")
                                     if child.get(k) is not None}) for _, child in rows],
    }


async def _anonymise_batch(
    sessions: async_sessionmaker[AsyncSession], kind: str, params: dict[str, Any], limit: int
) -> int:
    async with transaction(sessions) as session:
        ids = [row[0] for row in await _batch_ids(session, kind, params, limit)]
        if not ids:
            return 0
        values = {"ids": ids, "mark": MARK, "now": params["now"],
                  **await _kept_children(session, ids)}
        for sql in _ANONYMISE_CASES:
            await session.execute(text(sql), _used(sql, values))
        children = list(
            (await session.execute(text(_CHILDREN_DONE), {"ids": ids})).scalars()
        )
        if children:
            child_values = {**values, "ids": children}
            for sql in _ANONYMISE_CHILDREN:
                await session.execute(text(sql), _used(sql, child_values))
        await session.execute(
            text(_TIMELINE), {"ids": ids, "actor": ACTOR, "kind": kind, "now": params["now"]}
        )
        await _audit(
            session,
            "retention.anonymise",
            {"kind": kind, "count": len(ids), "cases": ids, "children": len(children)},
        )
        return len(ids)


# What a batch of the kinds without a case to anonymise does to its rows.
_CLEAR = {
    "sms_body": "UPDATE sms_message SET body = '', reply = NULL, media = NULL WHERE id = ANY(:ids)",
    "outbox": "DELETE FROM outbox WHERE id = ANY(:ids)",
}


async def _clear_batch(
    sessions: async_sessionmaker[AsyncSession], kind: str, params: dict[str, Any], limit: int
) -> int:
    """One batch of old SMS bodies (emptied) or done outbox rows (deleted), audited."""
    async with transaction(sessions) as session:
        ids = [row[0] for row in await _batch_ids(session, kind, params, limit)]
        if ids:
            await session.execute(text(_CLEAR[kind]), {"ids": ids})
            await _audit(session, f"retention.{kind}", {"kind": kind, "count": len(ids)})
        return len(ids)


async def _recordings(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    params: dict[str, Any],
    limit: int,
    outcome: Outcome,
) -> None:
    """Delete at Twilio, then mark the calls, a batch at a time; a failure is left for the
    next run (the cursor moves past it, so this run ends)."""
    after = 0
    while True:
        async with sessions() as session:
            rows = await _batch_ids(session, "recording", {**params, "after": after}, limit)
        if not rows:
            return
        after = rows[-1][0]
        deleted: list[int] = []
        for call_id, sid in rows:
            try:
                await delete_recording(settings, sid)
            except Exception as exc:  # noqa: BLE001 - counted and retried next run
                outcome.failed["recording"] = outcome.failed.get("recording", 0) + 1
                log.warning("recording of call %s not deleted: %s", call_id, type(exc).__name__)
                continue
            deleted.append(call_id)
        if deleted:
            async with transaction(sessions) as session:
                await session.execute(
                    text("UPDATE voice_call SET recording_deleted_at = :now, recording_url = NULL"
                         " WHERE id = ANY(:ids) AND recording_deleted_at IS NULL"),
                    {"ids": deleted, "now": params["now"]},
                )
                await _audit(
                    session, "retention.recording",
                    {"kind": "recording", "count": len(deleted), "calls": deleted},
                )
            outcome.counts["recording"] += len(deleted)


async def run_retention(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    now: datetime,
    *,
    dry_run: bool = False,
    policy: Periods | None = None,
) -> Outcome:
    """Count (dry run) or do everything past its period at `now`; returns the counts."""
    p = policy or periods()
    params = {
        **_params(now, p, timedelta(hours=settings.hotline_outbox_retention_hours)),
        "now": now,
    }
    outcome = Outcome(dry_run=dry_run)
    twilio = bool(settings.twilio_account_sid and settings.twilio_auth_token)
    if dry_run:
        async with sessions() as session:
            outcome.counts = await count_due(session, params)
        if not twilio and outcome.counts["recording"]:
            outcome.skipped.append("未配置 Twilio 账号：录音无法删除")
        log.info("retention dry run: %s", _counts(outcome))
        return outcome

    async def batches(kind: str, batch: Callable[[], Awaitable[int]]) -> None:
        started = time.perf_counter()
        while True:
            began = time.perf_counter()
            done = await batch()
            outcome.longest_batch = max(outcome.longest_batch, time.perf_counter() - began)
            if not done:
                break
            outcome.counts[kind] += done
        outcome.seconds[kind] = round(time.perf_counter() - started, 2)

    for kind in CASE_KINDS:
        await batches(kind, lambda kind=kind: _anonymise_batch(sessions, kind, params, p.batch))
    await batches("sms_body", lambda: _clear_batch(sessions, "sms_body", params, p.batch))
    if twilio:
        started = time.perf_counter()
        await _recordings(sessions, settings, params, min(p.batch, 100), outcome)
        outcome.seconds["recording"] = round(time.perf_counter() - started, 2)
    else:
        async with sessions() as session:
            due = await count_due(session, params, kinds=("recording",))
        if due["recording"]:
            outcome.skipped.append(f"未配置 Twilio 账号：{due['recording']} 段录音未删除")
    await batches("outbox", lambda: _clear_batch(sessions, "outbox", params, p.batch))
    async with transaction(sessions) as session:
        await _audit(
            session, "retention.run",
            {"counts": outcome.counts, "failed": outcome.failed, "at": now.isoformat()},
        )
    log.info("retention run: %s", _counts(outcome))
    return outcome


def _counts(outcome: Outcome) -> str:
    done = " ".join(f"{k}={n}" for k, n in outcome.counts.items())
    failed = " ".join(f"{k}_failed={n}" for k, n in outcome.failed.items() if n)
    return f"{done} {failed}".strip()


async def run_daily(
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
    now: datetime,
    name: str,
    *,
    policy: Periods | None = None,
) -> Outcome | None:
    """The scheduler's daily run: once a local day, after the configured hour, by the one
    scheduler that claims the day in Redis (the others, and later passes, get None). A run
    that fails is not retried that day; the next day's run picks up everything left."""
    p = policy or periods()
    day = run_day(now, p, config.risk().timezone)
    if day is None:
        return None
    try:
        first = redis.set(f"hotline:retention:{day.isoformat()}", name, nx=True, ex=2 * 86400)
    except RedisError:
        return None  # a run skipped beats two at once; tomorrow's catches up
    if not first:
        return None
    return await run_retention(sessions, settings, now, policy=p)
