"""The first `hotline up` a newcomer sees: the addresses to open, and no initdb chatter
(the embedded servers' output goes to a log file in the data dir)."""

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.fixtures.processes import HOTLINE, _free_port

pytest_plugins = ("tests.fixtures.processes",)


def test_first_up_prints_the_addresses_and_logs_initdb_to_a_file(data_dir):  # noqa: F811
    port = _free_port()
    out = data_dir / "terminal.txt"
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "HOTLINE_SECRET_KEY")}
    env.update(HOTLINE_DATA_DIR=str(data_dir / "d"), HOTLINE_PORT=str(port))
    with open(out, "wb") as terminal:
        proc = subprocess.Popen([HOTLINE, "up"], env=env, cwd=data_dir, start_new_session=True,
                                stdout=terminal, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while "接口文档" not in out.read_text(errors="replace"):
            assert proc.poll() is None, out.read_text(errors="replace")
            assert time.monotonic() < deadline, "no addresses were printed"
            time.sleep(0.2)  # waiting for the line, not timing anything
        health = subprocess.run([HOTLINE, "health", "--kind", "api"], env=env,
                                capture_output=True, text=True, timeout=60)
        assert health.returncode == 0, health.stderr  # the api container's check
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    shown = out.read_text(errors="replace")
    for path in ("/", "/report", "/receipt", "/console", "/console/api-docs"):
        assert f"http://127.0.0.1:{port}{path}\n" in shown
    assert "hotline demo" in shown
    assert "initdb" not in shown and "Running commandline" not in shown
    log = Path(data_dir / "d" / "embedded.log")
    assert "initdb" in log.read_text() and str(log) in shown
