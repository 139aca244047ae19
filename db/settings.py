"""Settings from the environment (and an optional `.env`), as named in the contract."""

import os
import re
import secrets
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, Literal

from limits import parse_many
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """One place for every knob, so a deployment is described by its environment."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    hotline_port: int = 8000
    hotline_host: str = "127.0.0.1"
    hotline_data_dir: Path = Path(".hotline")
    database_url: str | None = None
    redis_url: str | None = None
    hotline_public_url: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from_number: str | None = None
    # Where the Twilio REST client sends requests (tests point it at a local fake API).
    twilio_api_base_url: str | None = None
    hotline_secret_key: str | None = None
    # The key ring of personal data encrypted at rest (db.crypto), newest first; separate
    # from the token key. Generated into the data dir (`data_key`) when unset.
    hotline_data_key: str | None = None
    # While the database is down, Twilio voice calls are put through to this number (a
    # backup line, E.164) instead of only being told to call 110 and call back.
    hotline_backup_number: str | None = None
    hotline_config_dir: Path | None = None
    # Bodies larger than this are refused with 413 before they are read into memory.
    hotline_max_body_bytes: int = 256 * 1024
    # API processes serving the port (uvicorn workers); None: one per core.
    hotline_api_workers: int | None = None
    # RQ worker processes `hotline up` runs (more drain a backlog faster); None: one per core.
    hotline_workers: int | None = None
    # Work enqueued but not done after this many seconds is enqueued again by the scheduler's
    # reconciler: the intake of an emergency or mandatory case, and everything else.
    hotline_reconcile_urgent_seconds: float = 10.0
    hotline_reconcile_seconds: float = 60.0
    # Done outbox rows are deleted after this many hours.
    hotline_outbox_retention_hours: float = 7 * 24
    # Database connections each API process keeps open (its request concurrency).
    hotline_db_pool_size: int = 32
    # Staff tokens expire after this many seconds.
    hotline_token_ttl: int = 8 * 3600
    # `hotline backup`: where dumps go (default <data dir>/backups) and how many are kept.
    hotline_backup_dir: Path | None = None
    hotline_backup_keep: int = 14
    # A folder with pg_dump / pg_restore for an external server (default: PATH, then pgserver's).
    hotline_pg_bin: str | None = None
    # Who may read GET /metrics (`Authorization: Bearer <token>`); unset: no endpoint.
    hotline_metrics_token: str | None = None
    # The folder where every process of one deployment keeps its counters for /metrics
    # (`hotline up`: <data dir>/metrics; containers: a volume they share).
    hotline_metrics_dir: Path | None = None
    # Log lines as JSON (production) or readable text; auto: text on a terminal.
    hotline_log_format: Literal["auto", "json", "text"] = "auto"
    # Public intake (the web form and POST /api/v1/reports), in the `limits` notation
    # ("10/minute;50/hour"; empty: no limit). Per client address generously (a school files
    # several reports from one address), per identical content strictly (the description
    # with spacing and punctuation ignored: a script repeating itself). Over a limit the
    # reporter is answered 429 with the hotline's number (channels.intake_limits).
    hotline_intake_limits_per_address: str = "10/minute;50/hour"
    hotline_intake_limits_per_content: str = "3/minute;10/hour"
    # A web report whose content repeats one received within this many seconds is stored
    # and joins that report's case, held for an operator instead of being routed (and
    # police paged) again; 0: every report is routed on its own.
    hotline_intake_hold_seconds: int = 3600
    # A report carrying a proof of work (channels.proof: the form's script hashes while the
    # reporter types, about 2**bits SHA-256) counts against this larger per-address
    # allowance instead, so many honest reporters behind one address get through and a
    # script pays CPU per report. Bits 0: no challenge is offered.
    hotline_intake_proof_bits: int = Field(default=18, ge=0, le=28)
    hotline_intake_limits_per_address_proven: str = "30/minute;200/hour"

    @field_validator(
        "hotline_intake_limits_per_address",
        "hotline_intake_limits_per_content",
        "hotline_intake_limits_per_address_proven",
    )
    @classmethod
    def _limits_notation(cls, value: str) -> str:
        """A typo in a limit stops the service at start, not at the first report."""
        if value.strip():
            parse_many(value)
        return value.strip()

    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (CIDRs or
    # addresses, comma-separated, e.g. "10.0.0.0/8,127.0.0.1"); empty: nobody's, the
    # connecting address is the client (channels.proxies).
    hotline_trusted_proxies: Annotated[tuple[IPv4Network | IPv6Network, ...], NoDecode] = ()

    # Roles that may not sign in without a TOTP second factor (comma-separated, e.g.
    # "supervisor,admin"; dispatch.staff.totp); empty: TOTP is optional for everyone.
    hotline_totp_required_roles: Annotated[tuple[str, ...], NoDecode] = ()

    @field_validator("hotline_trusted_proxies", "hotline_totp_required_roles", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        """A comma- or space-separated list, as people write it in an environment."""
        if isinstance(value, str):
            return tuple(part for part in re.split(r"[,\s]+", value) if part)
        return value


def processes(value: int | None) -> int:
    """An explicit process count, or one per core."""
    return value if value else max(1, os.cpu_count() or 1)


@lru_cache
def get_settings() -> Settings:
    return Settings()


def async_url(url: str) -> str:
    """SQLAlchemy wants the asyncpg dialect; people and pgserver give plain postgresql:// URLs."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must be a PostgreSQL URL")


# Shorter than this is no key (an empty file left by a crash, a placeholder): refused.
MIN_SECRET_KEY_CHARS = 16


class SecretKeyError(RuntimeError):
    """The token key is missing or too short: starting would let anyone forge staff tokens."""


def secret_key(settings: Settings) -> str:
    """HOTLINE_SECRET_KEY, or one generated once and kept (0600) in the data dir.

    Several processes start at once (`hotline up`, uvicorn workers): the key is written to
    a temporary file and linked into place, so the file is complete or absent, never
    empty; the losers of the race read the winner's key. An empty or short key, from the
    environment or the file, stops the process instead of signing tokens with it.
    """
    if settings.hotline_secret_key:  # set but empty (a copied .env.example): generated
        key, source = settings.hotline_secret_key.strip(), "HOTLINE_SECRET_KEY"
    else:
        from db.crypto import write_new  # db.crypto reads these settings: imported here

        path = Path(settings.hotline_data_dir) / "secret_key"
        if not path.exists():
            write_new(path, secrets.token_urlsafe(48))
        key, source = path.read_text().strip(), str(path)
    if len(key) < MIN_SECRET_KEY_CHARS:
        raise SecretKeyError(
            f"{source}: the secret key is empty or shorter than {MIN_SECRET_KEY_CHARS}"
            " characters; set HOTLINE_SECRET_KEY, or delete the file to have one generated"
        )
    return key
