"""`hotline health --kind K`, the containers' healthchecks: a worker is alive while RQ's
registry lists it for this host, a scheduler while its heartbeat file is fresh."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dispatch.ops import schema

pytest_plugins = ("tests.fixtures.processes",)


@pytest.fixture
def env(fresh_database, own_redis_url, tmp_path) -> dict[str, str]:
    url = fresh_database()
    schema.migrate(url)
    return {**os.environ, "DATABASE_URL": url, "REDIS_URL": own_redis_url,
            "HOTLINE_DATA_DIR": str(tmp_path), "HOTLINE_SECRET_KEY": "k" * 32}


def _health(kind: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dispatch.ops.cli", "health", "--kind", kind],
                          env=env, capture_output=True, text=True, timeout=60)


def _until(check, proc: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert proc.poll() is None, f"the process exited before {what}"
        assert time.monotonic() < deadline, f"no {what} in time"
        time.sleep(0.2)  # waiting for an event, not timing anything


def _run(kind: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dispatch.ops.cli", kind], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_worker_is_healthy_while_registered_in_redis(env):
    assert _health("worker", env).returncode == 1  # none yet
    worker = _run("worker", env)
    try:
        _until(lambda: _health("worker", env).returncode == 0, worker, "registered worker")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    gone = _health("worker", env)
    assert gone.returncode == 1 and "worker" in gone.stderr


def test_scheduler_is_healthy_while_its_heartbeat_is_fresh(env, tmp_path):
    beat = Path(tmp_path) / "scheduler.heartbeat"
    assert _health("scheduler", env).returncode == 1  # no file
    beat.touch()
    old = time.time() - 600
    os.utime(beat, (old, old))  # a loop that stopped turning leaves an old file
    stale = _health("scheduler", env)
    assert stale.returncode == 1 and "old" in stale.stderr
    beat.unlink()

    scheduler = _run("scheduler", env)
    try:
        _until(beat.exists, scheduler, "heartbeat file")
        assert _health("scheduler", env).returncode == 0
        os.utime(beat, (old, old))
        _until(lambda: beat.stat().st_mtime > old + 300, scheduler, "fresh heartbeat")
    finally:
        scheduler.send_signal(signal.SIGTERM)
        scheduler.wait(60)
    assert not beat.exists()  # stopped: not alive
    assert _health("scheduler", env).returncode == 1


def test_health_names_only_known_kinds(env):
    wrong = _health("database", env)
    assert wrong.returncode == 2 and "api、worker 或 scheduler" in wrong.stderr
