"""The process's counters: what happened here (intake, triage, jobs, SMS, requests).

In the lowest room so every room may count. What is a state rather than an event (the
outbox, queues, referrals, partner lines) is not counted here: `/metrics` reads it from
PostgreSQL and Redis when it is scraped (`dispatch.ops.metrics`).

Several processes (API workers, RQ workers, the scheduler) count into one folder of
memory-mapped files when PROMETHEUS_MULTIPROC_DIR names one (`use_folder`), and `/metrics`
adds them up. Every metric has labels, so no value exists before its first use and the
folder can be chosen at start-up, after this module was imported.
"""

import os
import socket
from pathlib import Path

from prometheus_client import Counter, Histogram, values

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

INTAKE = Counter(
    "hotline_intake",
    "Reports taken, by channel and outcome (case: a new case; joined: added to a case; "
    "duplicate: a retry or double submission; held: a repeat joined to its first's case, not "
    "routed; limited: refused by a rate limit; refused: the input was refused)",
    ["channel", "outcome"],
)
TRIAGE = Counter(
    "hotline_triage_decisions",
    "Intake judgements, by the provisional risk, whether it is an emergency, whether the "
    "text raised the emergency over what the person said, and the not-a-case reason",
    ["risk", "emergency", "raised", "not_a_case"],
)
JOB_SECONDS = Histogram(
    "hotline_job_duration_seconds",
    "Background job run time by kind (outbox topic)",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
JOB_FAILURES = Counter(
    "hotline_job_failures", "Background jobs that raised (retried later), by kind", ["kind"]
)
SMS = Counter(
    "hotline_sms_sends",
    "SMS handed to Twilio, by kind (reply: to a caller; staff: a notification) and result "
    "(sent, failed, logged: Twilio not configured)",
    ["kind", "result"],
)
REQUEST_SECONDS = Histogram(
    "hotline_http_request_duration_seconds",
    "HTTP request latency by route template, method and status",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def _identity() -> str:
    """Unique per process even when containers share the folder (each has its own pid 1)."""
    return f"{socket.gethostname()}-{os.getpid()}"


def use_folder(folder: Path, *, clear: bool = False) -> None:
    """Count into `folder`, shared with the other processes of this deployment.

    Set before the first count, and inherited by child processes through the environment.
    `clear` empties it first: only the process that starts the others may (a folder kept
    across runs would add old processes' counts to the new ones').
    """
    folder.mkdir(parents=True, exist_ok=True)
    if clear:
        for old in folder.glob("*.db"):
            old.unlink()
    os.environ[MULTIPROC_ENV] = str(folder)
    values.ValueClass = values.MultiProcessValue(_identity)


def adopt_folder() -> None:
    """In a process started by one that called `use_folder`: count into the same folder."""
    if os.environ.get(MULTIPROC_ENV):
        use_folder(Path(os.environ[MULTIPROC_ENV]))


def multiprocess_folder() -> Path | None:
    folder = os.environ.get(MULTIPROC_ENV)
    return Path(folder) if folder else None


adopt_folder()  # a child of `hotline up` or of uvicorn's supervisor counts where they do
