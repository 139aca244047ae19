"""`hotline up` from a stopped state to /readyz 200, on the embedded default (goal: < 10 s).

Cold: a new data dir (initdb, migrations, reference data). Warm: the same dir again.

    python -m bench.bench_up
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.service import HOTLINE, free_port


def start_to_ready(data_dir: Path) -> float:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(HOTLINE_DATA_DIR=str(data_dir), HOTLINE_PORT=str(port))
    started = time.perf_counter()
    proc = subprocess.Popen(
        [HOTLINE, "up"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.perf_counter() - started > 120:
                raise RuntimeError("hotline up did not become ready")
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def main() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="hbu", dir="/tmp"))
    try:
        print(f"hotline up → /readyz 200, cold (new data dir): {start_to_ready(data_dir):.2f} s")
        for _ in range(2):
            print(
                f"hotline up → /readyz 200, warm (same data dir): {start_to_ready(data_dir):.2f} s"
            )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
