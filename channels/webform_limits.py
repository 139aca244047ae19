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

A report with a fresh, correct, unused proof of work (`channels.proof`, computed by the form's
script while the reporter types, or by an API client from `GET /api/v1/reports/challenge`)
counts against a larger per-address allowance of its own instead: many honest reporters
behind one address get through, a script pays CPU for each report. The content's limit
applies to every report alike.
"""

from functools import lru_cache

from fastapi import Request
from limits import RateLimitItem

from channels import proof as pow_
from channels.errors import ApiError
from channels.ratelimit import first_use, items, now, take
from channels.web import client_ip, secret_key
from db.metrics import INTAKE
from workflows import config
from workflows.cases.intake import NewReport, content_fingerprint

CODE = "intake_rate_limited"
# How long a challenge stays good: as long as the form's own CSRF token (channels.webform).
PROOF_MAX_AGE = 4 * 3600


def hotline() -> tuple[str, str]:
    """The hotline's name and number (workflows/config/channels.toml)."""
    hotline = config.channels().hotline
    return hotline.name, hotline.number


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


def challenge(request: Request) -> str | None:
    """A new proof-of-work challenge for a form or an API client; None when switched off."""
    bits = request.app.state.runtime.settings.hotline_intake_proof_bits
    return pow_.issue(secret_key(request).encode(), now(), bits) if bits else None


async def proven(request: Request, proof: str | None) -> bool:
    """Whether `proof` ("challenge:solution") is ours, fresh, hard enough, right and unused."""
    bits = request.app.state.runtime.settings.hotline_intake_proof_bits
    if not bits or not proof:
        return False
    nonce = pow_.verified_nonce(secret_key(request).encode(), proof, now(), PROOF_MAX_AGE, bits)
    return nonce is not None and await first_use(request, "intake-proof", nonce, PROOF_MAX_AGE)


async def throttle(request: Request, new: NewReport, proof: str | None = None) -> None:
    """Count the report against the address's (or, with a proof of work, the proven
    address's) and the content's limits; IntakeLimited when one is used up (the content's
    is not counted for a report the address's refused)."""
    settings = request.app.state.runtime.settings
    if await proven(request, proof):
        bucket, notation = "intake-ip-proven", settings.hotline_intake_limits_per_address_proven
    else:
        bucket, notation = "intake-ip", settings.hotline_intake_limits_per_address
    retry = await take(request, bucket, client_ip(request) or "-", _limits(notation))
    if retry is None:
        retry = await take(
            request, "intake-content", f"{new.channel}:{content_fingerprint(new.description)}",
            _limits(settings.hotline_intake_limits_per_content),
        )
    if retry is not None:
        INTAKE.labels(new.channel, "limited").inc()
        raise IntakeLimited(retry)
