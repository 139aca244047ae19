"""The channels' clock. Thread windows, opening hours and block expiries all read it, so a
test moves time by replacing `now` instead of sleeping."""

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
