"""The order of SMS delivery and call statuses, so a late callback never moves one back.

Twilio's status callbacks can arrive out of order and more than once. A status replaces the
stored one only when it ranks strictly higher; the first final status wins, and a repeat
changes nothing.
"""

# Outbound SMS: ours first (before Twilio has the message), then Twilio's MessageStatus.
MESSAGE_RANKS = {
    "pending": 0,  # in the outbox, waiting for the sender job
    "retrying": 0,  # a send failed for a passing reason; another attempt is scheduled
    "submitting": 0,  # the request to Twilio is in flight
    "accepted": 1,
    "scheduled": 1,
    "queued": 2,
    "sending": 3,
    "sent": 4,
    "delivered": 5,
    "undelivered": 5,
    "failed": 5,
    "canceled": 5,
    "suppressed": 5,  # ours: the number has opted out, nothing was sent
    "read": 6,
}

# Calls: Twilio's CallStatus.
CALL_RANKS = {
    "queued": 0,
    "initiated": 0,
    "ringing": 1,
    "in-progress": 2,
    "completed": 3,
    "busy": 3,
    "no-answer": 3,
    "failed": 3,
    "canceled": 3,
}
CALL_FINAL = frozenset(s for s, rank in CALL_RANKS.items() if rank == 3)


def ranks_below(status: str, ranks: dict[str, int]) -> list[str]:
    """The stored statuses that `status` may replace (empty for an unknown status)."""
    if status not in ranks:
        return []
    return [s for s, rank in ranks.items() if rank < ranks[status]]


def advances(current: str | None, new: str, ranks: dict[str, int]) -> bool:
    return new in ranks and (current is None or current in ranks_below(new, ranks))
