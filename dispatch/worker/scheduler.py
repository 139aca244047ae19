"""`hotline scheduler`: the outbox relay, the reconciler, the deadline sweeps and the
scorecard's and statistics page's tallies, in one async process.

The relay polls often (a cheap partial-index probe), so dispatch latency stays well under a
second; the reconciler looks every second for work enqueued but not done (what Redis lost, a
dead worker's job); the sweeps run every few seconds; the scorecard's tally and the
statistics page's (dispatch.console.stats_tally) count closed days every minute. Several
schedulers may run: rows are locked with SKIP LOCKED (the tallies with advisory locks), so
they share the work instead of repeating it, and the daily
calendar warning and the daily retention run (dispatch.retention) are claimed in Redis by
one of them. A heartbeat in Redis tells `/readyz` a scheduler runs.
"""

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from redis.exceptions import RedisError

from channels.partners.callbacks import wake_stalled
from db import clock
from db.engine import APP_ROLE, make_engine, make_sessionmaker, transaction
from db.settings import get_settings
from dispatch.casework.owners import remind_visits
from dispatch.console import stats_tally
from dispatch.referrals.deadlines import sweep_referrals, sweep_visits
from dispatch.retention.job import run_daily
from dispatch.supervision import tally
from dispatch.supervision.service import sweep_orders
from dispatch.tasks.service import sweep_tasks
from dispatch.worker.heartbeats import Heartbeat
from dispatch.worker.reconcile import Grace, prune, reconcile_once
from dispatch.worker.relay import relay_once, relay_redis
from workflows import config
from workflows.holidays import calendar_warning
from workflows.retention import periods, run_day

log = logging.getLogger("hotline.scheduler")

RELAY_IDLE_SECONDS = 0.1
RECONCILE_SECONDS = 1.0
SWEEP_SECONDS = 5.0
PRUNE_SECONDS = 60.0
# The scorecard's tally of closed days: a day touched is counted again within a minute
# (until then the scorecard reads that day live, so its figures never lag).
TALLY_SECONDS = 60.0
# A partner's due feedback with no delivery job for this long gets a fresh one.
PARTNER_GRACE = timedelta(seconds=60)


async def run_scheduler(database_url: str, redis_url: str) -> None:
    settings = get_settings()
    engine = make_engine(database_url, pool_size=3, role=APP_ROLE)
    sessions = make_sessionmaker(engine)
    redis = relay_redis(redis_url)
    grace = Grace.of(settings)
    retention = timedelta(hours=settings.hotline_outbox_retention_hours)
    name = f"{socket.gethostname()}-{os.getpid()}"
    heartbeat = Heartbeat(relay_redis(redis_url), "scheduler", name)
    heartbeat.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def pause(seconds: float) -> None:
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except TimeoutError:
            pass

    warned_on: list = []  # the day the calendar warning was last logged

    def warn_calendar_daily(today) -> None:
        """Log a missing year of holidays once a day, until someone types it in; with
        several schedulers, the first to claim the day in Redis logs it."""
        if warned_on == [today] or not (message := calendar_warning(today)):
            return
        warned_on[:] = [today]
        try:
            first = redis.set(f"hotline:calendar-warned:{today}", name, nx=True, ex=2 * 86400)
        except RedisError:
            first = True  # better twice than not at all
        if first:
            log.warning("holiday calendar: %s", message)

    async def every(name: str, seconds: float, step: Callable[[], Awaitable[int]]) -> None:
        """Run `step` until stopped; again at once while it finds work, else after a pause."""
        while not stop.is_set():
            try:
                busy = await step()
            except Exception as exc:  # noqa: BLE001 - keep going; the error is logged
                log.error("%s pass failed: %s", name, type(exc).__name__)
                busy = 0
            if not busy:
                await pause(seconds)

    async def sweep() -> int:
        warn_calendar_daily(clock.now().date())
        start_retention_daily()
        async with transaction(sessions) as session:
            now = clock.now()
            await sweep_referrals(session, now)
            await sweep_visits(session, now)
            await sweep_orders(session, now)
            await sweep_tasks(session, now)
            await remind_visits(session, now)
            await wake_stalled(session, now, PARTNER_GRACE)
        return 0

    async def count_days() -> int:
        async with transaction(sessions) as session:
            await tally.build(session, clock.now())
        # The statistics page's days (its own transaction: one REPEATABLE READ snapshot).
        await stats_tally.build(sessions, clock.now())
        return 0  # a day just counted stays "touched" for the margin: never loop at once

    retention_task: list[asyncio.Task] = []  # the daily retention run, while it runs
    retention_day: list = []  # the local day this scheduler last tried it

    def start_retention_daily() -> None:
        """The retention job once a day (dispatch.retention.job.run_daily), in the
        background: a long first run must not hold up the deadline sweeps."""
        day = run_day(clock.now(), periods(), config.risk().timezone)
        if day is None or retention_day == [day]:
            return
        if retention_task and not retention_task[0].done():
            return
        retention_day[:] = [day]
        retention_task[:] = [asyncio.create_task(retention_daily())]

    async def retention_daily() -> None:
        try:
            await run_daily(sessions, redis, settings, clock.now(), name)
        except Exception as exc:  # noqa: BLE001 - logged; tomorrow's run picks up the rest
            log.error("retention run failed: %s", type(exc).__name__)

    last_prune = 0.0

    async def reconcile() -> int:
        nonlocal last_prune
        if time.monotonic() - last_prune > PRUNE_SECONDS:
            last_prune = time.monotonic()
            await prune(sessions, retention)
        await reconcile_once(sessions, redis, grace)
        return 0

    try:
        await asyncio.gather(
            every("relay", RELAY_IDLE_SECONDS, lambda: relay_once(sessions, redis)),
            every("reconcile", RECONCILE_SECONDS, reconcile),
            every("sweep", SWEEP_SECONDS, sweep),
            every("tally", TALLY_SECONDS, count_days),
        )
    finally:
        for task in retention_task:
            task.cancel()
        heartbeat.close()
        redis.close()
        await engine.dispose()
