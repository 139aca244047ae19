"""`hotline scheduler`: the outbox relay and the deadline sweeps, in one async process.

The relay polls often (a cheap partial-index probe), so dispatch latency stays well under a
second; the sweeps run every few seconds. Several schedulers may run: rows are locked with
SKIP LOCKED, so they share the work instead of repeating it.
"""

import asyncio
import logging
import signal
from datetime import UTC, datetime, timedelta

from channels.partner_callbacks import wake_stalled
from db.engine import make_engine, make_sessionmaker, transaction
from dispatch.deadlines import sweep_referrals, sweep_visits
from dispatch.relay import relay_once, relay_redis
from workflows.holidays import calendar_warning

log = logging.getLogger("hotline.scheduler")

RELAY_IDLE_SECONDS = 0.1
SWEEP_SECONDS = 5.0
# A partner's due feedback with no delivery job for this long gets a fresh one.
PARTNER_GRACE = timedelta(seconds=60)


async def run_scheduler(database_url: str, redis_url: str) -> None:
    engine = make_engine(database_url, pool_size=3)
    sessions = make_sessionmaker(engine)
    redis = relay_redis(redis_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def relay_loop() -> None:
        while not stop.is_set():
            try:
                sent = await relay_once(sessions, redis)
            except Exception as exc:  # noqa: BLE001 - keep relaying; the error is logged
                log.error("relay pass failed: %s", type(exc).__name__)
                sent = 0
            if not sent:
                try:
                    await asyncio.wait_for(stop.wait(), RELAY_IDLE_SECONDS)
                except TimeoutError:
                    pass

    warned_on: list = []  # the day the calendar warning was last logged

    def warn_calendar_daily(today) -> None:
        """Log a missing year of holidays once a day, until someone types it in."""
        if warned_on != [today] and (message := calendar_warning(today)):
            log.warning("holiday calendar: %s", message)
            warned_on[:] = [today]

    async def sweep_loop() -> None:
        while not stop.is_set():
            warn_calendar_daily(datetime.now(UTC).date())
            try:
                async with transaction(sessions) as session:
                    now = datetime.now(UTC)
                    await sweep_referrals(session, now)
                    await sweep_visits(session, now)
                    await wake_stalled(session, now, PARTNER_GRACE)
            except Exception as exc:  # noqa: BLE001
                log.error("sweep failed: %s", type(exc).__name__)
            try:
                await asyncio.wait_for(stop.wait(), SWEEP_SECONDS)
            except TimeoutError:
                pass

    try:
        await asyncio.gather(relay_loop(), sweep_loop())
    finally:
        redis.close()
        await engine.dispose()
