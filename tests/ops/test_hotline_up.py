"""`hotline up` on the embedded default, as a person runs it: it starts PostgreSQL and Redis,
migrates, serves, runs the worker and scheduler, keeps data across restarts, and on SIGTERM
or Ctrl-C leaves no process behind."""

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil

from tests.fixtures.processes import HOTLINE, _free_port, leftovers

pytest_plugins = ("tests.fixtures.processes",)


def _start(data_dir: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "HOTLINE_SECRET_KEY")}
    env.update(HOTLINE_DATA_DIR=str(data_dir), HOTLINE_PORT=str(port))
    return subprocess.Popen([HOTLINE, "up"], env=env, cwd=data_dir, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_ready(proc: subprocess.Popen, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "hotline up exited before it was ready"
        try:
            answer = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
            if answer.status_code == 200 and answer.json()["missing"] == []:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # polling for readiness, not timing anything
    raise AssertionError("hotline up was not ready in time")


def _kind(proc: psutil.Process) -> str:
    """What a child of `hotline up` runs: RQ renames its workers' processes ("rq:worker:…")
    when setproctitle is installed."""
    cmdline = proc.cmdline()
    return "worker" if cmdline[:1] and cmdline[0].startswith("rq:worker") else " ".join(
        cmdline[-1:]
    )


def _tree(proc: subprocess.Popen) -> list[psutil.Process]:
    return [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]


def _left(tree: list[psutil.Process]) -> list[psutil.Process]:
    """What of the tree still runs, given a few seconds: multiprocessing's resource tracker
    (uvicorn with several API processes) leaves only when its parent has gone."""
    _, alive = psutil.wait_procs(tree, timeout=10)
    return [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def _stop(proc: subprocess.Popen, how: str) -> int:
    if how == "ctrl-c":  # the terminal sends SIGINT to the whole foreground group
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(60)


def test_up_serves_keeps_data_and_stops_cleanly(data_dir):
    port = _free_port()
    proc = _start(data_dir, port)
    try:
        _wait_ready(proc, port)
        kinds = {_kind(p) for p in _tree(proc)}
        assert {"worker", "scheduler"} <= kinds  # the API's siblings run as children
        created = httpx.post(f"http://127.0.0.1:{port}/api/v1/reports", timeout=10,
                             json={"description": "孩子一个人在家三天了", "jurisdiction": "990102"})
        assert created.status_code == 201
        receipt = created.json()["receipt_code"]
        # As the README says: a staff account added next to the running service (the
        # command finds the embedded database by itself), who can then sign in.
        env = {k: v for k, v in os.environ.items()
               if k not in ("DATABASE_URL", "REDIS_URL", "HOTLINE_SECRET_KEY")}
        added = subprocess.run(
            [HOTLINE, "user", "add", "--username", "li", "--role", "caseworker",
             "--jurisdiction", "990100"],
            input="a-long-password\n", capture_output=True, text=True, timeout=60,
            env={**env, "HOTLINE_DATA_DIR": str(data_dir)}, cwd=data_dir,
        )
        assert added.returncode == 0, added.stderr
        token = httpx.post(f"http://127.0.0.1:{port}/api/v1/auth/token", timeout=10,
                           data={"username": "li", "password": "a-long-password"})
        assert token.status_code == 200 and token.json()["access_token"]
        tree = _tree(proc)
    finally:
        code = _stop(proc, "sigterm")
    assert code == 0 or code == 128 + signal.SIGTERM
    assert _left(tree) == []
    assert leftovers(data_dir) == []

    # Same data dir again: the report is still there. Stopped the way a terminal does.
    proc = _start(data_dir, port)
    try:
        _wait_ready(proc, port)
        lookup = httpx.get(f"http://127.0.0.1:{port}/api/v1/receipts/{receipt}", timeout=10)
        assert lookup.status_code == 200
        tree = _tree(proc)
    finally:
        _stop(proc, "ctrl-c")
    assert _left(tree) == []
    assert leftovers(data_dir) == []
