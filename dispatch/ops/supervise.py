"""Keeping `hotline up`'s children alive: a worker or scheduler that dies is started again.

A thread watches the children while the API serves in the main thread. A child that exits
(crash, SIGKILL, the OOM killer) is logged with its exit code and restarted after a pause
that doubles with each quick death (0.5 s up to 30 s) and starts over once a child has run
for a minute, so a child that cannot start does not spin. The API's own processes, when
there are several, are kept alive the same way by uvicorn's supervisor.
"""

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("hotline.supervise")

FIRST_PAUSE, LONGEST_PAUSE, STEADY = 0.5, 30.0, 60.0
POLL = 0.2


def spawn(kind: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dispatch.ops.cli", kind], env=env)


@dataclass
class Child:
    kind: str
    process: subprocess.Popen
    started: float = field(default_factory=time.monotonic)
    pause: float = FIRST_PAUSE
    restart_at: float | None = None
    restarts: int = 0


class Supervisor(threading.Thread):
    """Starts the children and restarts whichever dies, until `stop()`."""

    def __init__(
        self,
        kinds: list[str],
        env: dict[str, str],
        start: Callable[[str, dict[str, str]], subprocess.Popen] = spawn,
    ) -> None:
        super().__init__(name="supervisor", daemon=True)
        self.env, self.start_child = env, start
        self.children = [Child(kind, start(kind, env)) for kind in kinds]
        self.halt = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        while not self.halt.wait(POLL):
            with self.lock:
                if not self.halt.is_set():
                    self.check(time.monotonic())

    def check(self, now: float) -> None:
        for child in self.children:
            if child.restart_at is None:
                code = child.process.poll()
                if code is None:
                    continue
                ran = now - child.started
                child.pause = FIRST_PAUSE if ran > STEADY else child.pause
                child.restart_at = now + child.pause
                log.warning(
                    "%s (pid %s) exited with code %s after %.0f s; restarting in %.1f s",
                    child.kind,
                    child.process.pid,
                    code,
                    ran,
                    child.pause,
                )
                child.pause = min(child.pause * 2, LONGEST_PAUSE)
            elif now >= child.restart_at:
                child.process = self.start_child(child.kind, self.env)
                child.started, child.restart_at = now, None
                child.restarts += 1
                log.warning("%s restarted (pid %s)", child.kind, child.process.pid)

    def stop(self, timeout: float = 15.0) -> None:
        """No more restarts; SIGTERM every child, SIGKILL what is still there at the end."""
        with self.lock:
            self.halt.set()
        processes = [c.process for c in self.children]
        for process in processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
