"""Running the processes: the API alone, or everything in one tree (`hotline up`).

`hotline up` owns a small process tree: the embedded servers when no URLs are given, the
workers and scheduler as child processes (restarted when they die, see `dispatch.ops.supervise`),
and the API in this process (one uvicorn process per core by default, kept alive by
uvicorn). Whatever ends it (Ctrl-C, SIGTERM, a crash), the `finally` stops the children, then
the servers, so nothing is left running.
"""

import logging
import os
import signal
from pathlib import Path

import uvicorn

from db.settings import Settings, processes
from dispatch.ops import logs, schema, startup
from dispatch.ops.index_key import IndexKeyMismatch
from dispatch.ops.supervise import Supervisor

log = logging.getLogger("hotline.serve")


def serve_api(settings: Settings, database_url: str, redis_url: str, kind: str = "api") -> None:
    """Serve the API; with HOTLINE_API_WORKERS > 1, in that many processes on one port."""
    os.environ["DATABASE_URL"], os.environ["REDIS_URL"] = database_url, redis_url
    uvicorn.run(
        "dispatch.app:create_app",
        factory=True,
        workers=processes(settings.hotline_api_workers),
        host=settings.hotline_host,
        port=settings.hotline_port,
        # Forwarded headers are read by the app (channels.proxies), from the proxies in
        # HOTLINE_TRUSTED_PROXIES only; uvicorn's own reading would trust 127.0.0.1 always.
        proxy_headers=False,
        log_config=logs.log_config(settings, kind),  # again in each worker process
        access_log=False,  # request lines carry receipt codes and phone numbers in paths
        # A worker process answers uvicorn's health pings only once its imports are done
        # (numpy, scikit-learn, jieba: several seconds on a busy two-core host); the default
        # 5 s kills it before, again and again.
        timeout_worker_healthcheck=60,
    )


def _raise_exit(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def run_all(settings: Settings) -> int:
    """Start what is needed, migrate, run worker + scheduler + API; clean up on any exit."""
    from dispatch.ops.embedded import EmbeddedServers

    startup.start(settings, "up")
    signal.signal(signal.SIGTERM, _raise_exit)
    embedded: EmbeddedServers | None = None
    supervisor: Supervisor | None = None
    try:
        database_url, redis_url = settings.database_url, settings.redis_url
        if not database_url or not redis_url:
            data_dir = Path(settings.hotline_data_dir).resolve()
            data_dir.mkdir(parents=True, exist_ok=True)
            embedded = EmbeddedServers(data_dir, postgres=not database_url, redis=not redis_url)
            embedded.start()
            database_url = database_url or embedded.database_url
            redis_url = redis_url or embedded.redis_url
            log.info("embedded servers started under %s", data_dir)
        assert database_url and redis_url
        schema.migrate(database_url)
        env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
        # Beside the API: RQ workers and one scheduler (each its own container in production),
        # restarted when they die.
        kinds = ["worker"] * processes(settings.hotline_workers) + ["scheduler"]
        supervisor = Supervisor(kinds, env)
        supervisor.start()
        serve_api(settings, database_url, redis_url, kind="up")
        return 0
    except IndexKeyMismatch as exc:
        log.error("%s", exc)  # before anything serves: the key ring lacks the indexes' key
        return 2
    except KeyboardInterrupt:
        return 130
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        if supervisor is not None:
            supervisor.stop()
        if embedded is not None:
            embedded.stop()
            log.info("embedded servers stopped")
