"""Abuse control on public intake (the web form at /report and POST /api/v1/reports).

Each report about to be stored counts against two sets of limits (`channels.ratelimit`, in
Redis; the Settings name them): per client address, generous (a school files several from
one address), and per content (`workflows.cases.intake.content_fingerprint`), strict (a
script repeating itself, from one address or many). Over either the report is not stored and
the reporter is told where to turn at once: the hotline's number and 110. A report the
limits let through may still be a repeat: `record_report` holds those for an operator
instead of paging police again (`hold_seconds`), and that hold, in PostgreSQL, works when
Redis is down, while the limits then let everything through (logged) — a child's report
is worth more than the limit.
"""

from functools import lru_cache

from fastapi import Request
from limits import RateLimitItem

from channels.errors import ApiError
from channels.ratelimit import items, take
from channels.web import client_ip
from db.metrics import INTAKE
from workflows.cases.intake import NewReport, content_fingerprint
from workflows.config import load

CODE = "intake_rate_limited"


def hotline() -> tuple[str, str]:
    """The hotline's name and number (workflows/config/channels.toml)."""
    config = load("channels")["hotline"]
    return config["name"], config["number"]


def refusal_text(retry_after: int) -> str:
    """What a reporter over the limit reads: the report is not saved, and the ways through."""
    name, number = hotline()
    minutes = max(1, -(-retry_after // 60))
    return (
        f"提交过于频繁，本次报告未能保存。如儿童正面临危险，请立即拨打110报警；"
        f"也可拨打{name}{number}直接报告，或约{minutes}分钟后再提交。"
    )


class IntakeLimited(ApiError):
    """429 in the contract's shape, with Retry-After; the web form shows it as a page."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            429, CODE, refusal_text(retry_after), headers={"Retry-After": str(retry_after)}
        )
        self.retry_after = retry_after


@lru_cache(maxsize=16)
def _limits(notation: str) -> tuple[RateLimitItem, ...]:
    return tuple(items(notation))


async def throttle(request: Request, new: NewReport) -> None:
    """Count the report against the address's and the content's limits; IntakeLimited
    when one is used up (the content's is not counted for a report the address's refused)."""
    settings = request.app.state.runtime.settings
    retry = await take(
        request, "intake-ip", client_ip(request) or "-",
        _limits(settings.hotline_intake_limits_per_address),
    )
    if retry is None:
        retry = await take(
            request, "intake-content", f"{new.channel}:{content_fingerprint(new.description)}",
            _limits(settings.hotline_intake_limits_per_content),
        )
    if retry is not None:
        INTAKE.labels(new.channel, "limited").inc()
        raise IntakeLimited(retry)
