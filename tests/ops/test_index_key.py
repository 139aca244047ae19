"""The blind-index key guard (issue 14): the database remembers the key its blind indexes
were made under, and every start refuses a ring without it, with a message naming what to
do; a rotation (a new key first, the oldest kept) starts as before."""

import asyncio
import os

import pytest

from db import crypto
from dispatch.ops import index_key, schema, serve
from tests.fixtures import raw_sql
from tests.fixtures.keys import run_cli

pytest_plugins = ("tests.fixtures.keys",)

RUN_RING = os.environ["HOTLINE_DATA_KEY"]  # the run's ring: the template was migrated under it


async def _recorded(url: str) -> str:
    return await raw_sql.fetchval(url, "SELECT key_id FROM index_key")


async def test_the_first_migrate_records_the_index_key_and_a_rotation_keeps_it(
    fresh_database, ring_with
):
    url = await asyncio.to_thread(fresh_database)
    ring_with("first-key")
    recorded = crypto.ring().index_key_id
    await asyncio.to_thread(schema.migrate, url)
    assert await _recorded(url) == recorded and len(recorded) == 16
    assert "first-key" not in recorded
    ring_with("second-key,first-key")  # rotated: the oldest stays last
    assert await index_key.check(url) == recorded
    ring_with("second-key")  # the oldest removed
    with pytest.raises(index_key.IndexKeyMismatch) as refused:
        await index_key.check(url)
    text = str(refused.value)
    assert recorded in text and crypto.ring().index_key_id in text
    assert "最旧密钥" in text and "oldest key" in text and "HOTLINE_DATA_KEY" in text
    assert await _recorded(url) == recorded  # nothing overwritten


@pytest.mark.parametrize("kind", ["api", "worker", "scheduler", "migrate"])
async def test_each_process_refuses_a_ring_without_the_oldest_key(
    kind, monkeypatch, database_url, ring_with
):
    started = []
    monkeypatch.setattr("dispatch.ops.serve.serve_api", lambda *a, **k: started.append(kind))
    monkeypatch.setattr("dispatch.worker.process.run_worker",
                        lambda *a, **k: started.append(kind))

    async def scheduler(*a, **k):
        started.append(kind)

    monkeypatch.setattr("dispatch.worker.scheduler.run_scheduler", scheduler)
    monkeypatch.setattr("dispatch.ops.cli._redis_url", lambda: "redis://127.0.0.1:1/0")
    monkeypatch.setattr("dispatch.ops.liveness.beating", lambda job, beat: job)

    ring_with("a-new-key," + RUN_RING)  # rotated: starts
    ok = await run_cli(monkeypatch, database_url, kind)
    assert ok.exit_code == 0, ok.output
    assert started == ([] if kind == "migrate" else [kind])

    started.clear()
    ring_with("a-new-key")  # the oldest key gone: refused before anything runs
    refused = await run_cli(monkeypatch, database_url, kind)
    assert refused.exit_code == 2 and started == []
    assert "数据密钥环与数据库不符" in refused.output and "does not match" in refused.output


def test_hotline_up_refuses_before_starting_anything(
    monkeypatch, database_url, redis_url, settings, ring_with
):
    def no_supervisor(*a, **k):
        raise AssertionError("nothing may start")

    monkeypatch.setattr(serve, "Supervisor", no_supervisor)
    monkeypatch.setattr(serve, "serve_api", no_supervisor)
    monkeypatch.setattr(serve.startup, "start", lambda *a, **k: None)
    ring_with("a-new-key")
    given = settings.model_copy(update={"database_url": database_url, "redis_url": redis_url})
    assert serve.run_all(given) == 2
