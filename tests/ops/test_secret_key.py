"""The generated token key (no HOTLINE_SECRET_KEY): processes and threads starting at once all
read the same, complete key, and a key that is empty or short stops the process instead of
signing staff tokens that anyone could forge."""

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from db.settings import MIN_SECRET_KEY_CHARS, SecretKeyError, Settings, secret_key

ROUNDS = 40


def _settings(data_dir: Path, key: str | None = None) -> Settings:
    return Settings(hotline_data_dir=data_dir, hotline_secret_key=key)


def _read_at_once(data_dir: str, barrier, results) -> None:
    barrier.wait()
    try:
        results.put(secret_key(_settings(Path(data_dir))))
    except Exception as exc:  # an empty key is the failure we look for, not a crash
        results.put(f"error: {exc}")


def test_processes_starting_at_once_read_one_complete_key(tmp_path):
    ctx = multiprocessing.get_context("fork")
    seen: list[set[str]] = []
    for n in range(ROUNDS):
        folder = tmp_path / str(n)
        barrier, results = ctx.Barrier(4), ctx.Queue()
        procs = [
            ctx.Process(target=_read_at_once, args=(str(folder), barrier, results))
            for _ in range(4)
        ]
        for p in procs:
            p.start()
        keys = {results.get(timeout=30) for _ in procs}
        for p in procs:
            p.join(timeout=30)
        seen.append(keys)
    bad = [keys for keys in seen if len(keys) != 1 or len(next(iter(keys))) < 32]
    assert not bad, f"{len(bad)} of {ROUNDS} rounds read different or empty keys: {bad[:3]}"


def test_threads_starting_at_once_read_one_complete_key(tmp_path):
    for n in range(ROUNDS):
        settings = _settings(tmp_path / str(n))
        barrier = threading.Barrier(8)

        def read(settings=settings, barrier=barrier) -> str:
            barrier.wait()
            return secret_key(settings)

        with ThreadPoolExecutor(8) as pool:
            keys = set(pool.map(lambda _: read(), range(8)))
        assert len(keys) == 1 and len(keys.pop()) >= 32
        leftovers = [p.name for p in (tmp_path / str(n)).iterdir() if p.name != "secret_key"]
        assert leftovers == []  # no temporary files left behind
        assert (tmp_path / str(n) / "secret_key").stat().st_mode & 0o777 == 0o600


def test_an_empty_key_file_stops_the_process(tmp_path):
    """What a crash between create and write left behind with the old code."""
    (tmp_path / "secret_key").write_text("")
    with pytest.raises(SecretKeyError, match="empty or shorter"):
        secret_key(_settings(tmp_path))


def test_a_short_key_in_the_environment_is_refused(tmp_path):
    with pytest.raises(SecretKeyError, match="HOTLINE_SECRET_KEY"):
        secret_key(_settings(tmp_path, "x" * (MIN_SECRET_KEY_CHARS - 1)))
    assert secret_key(_settings(tmp_path, "k" * MIN_SECRET_KEY_CHARS)) == "k" * 16
    assert not (tmp_path / "secret_key").exists()


def test_the_generated_key_is_kept_across_restarts(tmp_path):
    first = secret_key(_settings(tmp_path))
    assert secret_key(_settings(tmp_path)) == first
    assert secret_key(_settings(tmp_path, "")) == first  # an empty variable means unset
