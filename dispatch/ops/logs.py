"""Log lines: JSON in production, readable text in development, with the request or job id.

Our modules log through the standard library (`logging.getLogger("hotline....")`); structlog
renders every record, theirs and uvicorn's alike, with the time (UTC), level, logger, the
process kind and whatever is bound to the current context (`request_id` by
`dispatch.ops.metrics.Observe`, `job_id` and `topic` by `dispatch.worker.jobs.run_topic`).
Every entry point applies `log_config` (uvicorn re-applies it in each API worker process).

What is logged never names a person: phone numbers are masked where they are logged at all,
and no body, name or address is passed to a log call (a test scans a run's logs for them).
"""

import logging
import logging.config
import sys
from typing import Any

import structlog

from db.settings import Settings


def _json(settings: Settings) -> bool:
    if settings.hotline_log_format == "auto":
        return not sys.stderr.isatty()
    return settings.hotline_log_format == "json"


def make_formatter(json: bool, kind: str) -> structlog.stdlib.ProcessorFormatter:
    """The renderer of every record (named in `log_config`, built by dictConfig)."""

    def add_kind(_logger: Any, _name: str, event: dict) -> dict:
        event.setdefault("process", kind)
        return event

    chain = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_kind,
    ]
    if json:
        render = [
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ]
    else:
        render = [structlog.dev.ConsoleRenderer(colors=False)]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=chain,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render],
    )


def log_config(settings: Settings, kind: str) -> dict:
    """A dictConfig: one handler on stderr for the root logger; uvicorn's loggers
    propagate to it (its access log stays off: paths carry receipt codes)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": f"{__name__}.make_formatter",
                "json": _json(settings),
                "kind": kind,
            }
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "structured",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": "INFO"},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True, "level": "INFO"},
            "uvicorn.error": {"handlers": [], "propagate": True, "level": "INFO"},
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
            "rq": {"handlers": [], "propagate": True, "level": "WARNING"},
            # Each request to Twilio or a partner, line by line: noise at INFO.
            "twilio": {"handlers": [], "propagate": True, "level": "WARNING"},
            "httpx": {"handlers": [], "propagate": True, "level": "WARNING"},
        },
    }


def configure(settings: Settings, kind: str) -> None:
    """Apply `log_config` in this process."""
    logging.config.dictConfig(log_config(settings, kind))
