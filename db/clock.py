"""The one clock of domain time: deadlines, thread windows, opening hours, block expiries,
timeline entries, the moment an operation happened. Every room reads it (`from db import
clock`; `clock.now()`), so a test moves time by replacing `db.clock.now` instead of
sleeping (`tests.fixtures.twilio.frozen_clock`).

Not for measuring durations (`time.monotonic()`), nor for the machinery's own time: outbox
availability and heartbeats, rate-limit windows, token and signature expiry, file names."""

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
