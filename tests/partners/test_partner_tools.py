"""`hotline partner add` / `partner list`, and `hotline simulate` playing a partner against
the service: signed orders at a rate, duplicates, and the feedback received back."""

import asyncio
import os
import socket
import subprocess
import sys

from sqlalchemy import select

from db.partners import Partner
from dispatch.ops.simulate import run
from tests.fixtures.partners import order, set_partner

pytest_plugins = ("tests.fixtures.partners", "tests.fixtures.console")


def _hotline(args: list[str], url: str, key: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url, "HOTLINE_SECRET_KEY": key}
    return subprocess.run(
        [sys.executable, "-m", "dispatch.ops.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


async def test_partner_add_keeps_the_secret_encrypted_and_it_signs_at_once(
    app, database_url, settings, post_forward, sessions
):
    secret = "cli-given-secret-0123456789"
    key = settings.hotline_secret_key
    try:
        ok = _hotline(
            ["partner", "add", "--source", "110", "--callback-url", "https://partner.example/cb"],
            database_url,
            key,
            secret + "\n",
        )
        assert ok.returncode == 0, ok.stderr
        assert secret not in ok.stdout + ok.stderr
        async with sessions() as session:
            partner = await session.scalar(select(Partner).where(Partner.source == "110"))
        assert secret not in partner.secret_box
        assert partner.callback_url == "https://partner.example/cb"
        # The API takes the new secret at once and refuses the old one.
        assert (await post_forward("110", order(), secret=secret)).status_code == 202
        assert (await post_forward("110", order())).status_code == 401

        listed = _hotline(["partner", "list"], database_url, key)
        assert "110" in listed.stdout and "https://partner.example/cb" in listed.stdout
        assert secret not in listed.stdout and partner.secret_box not in listed.stdout
        for args, stdin in (
            (["partner", "add", "--source", "999"], secret),
            (["partner", "add", "--source", "110"], "short"),
            (["partner", "add", "--source", "110", "--callback-url", "ftp://x"], secret),
        ):
            assert _hotline(args, database_url, key, stdin + "\n").returncode != 0, args
    finally:
        await set_partner(app, "110")


async def test_simulate_plays_a_partner_end_to_end(app, live_url, pump, partners):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    secret = "simulated-partner-secret-0123"
    await set_partner(
        app,
        "12355",
        secret=secret,
        callback_url=f"http://127.0.0.1:{sock.getsockname()[1]}/callback",
    )
    try:
        task = asyncio.create_task(
            run(
                live_url,
                "12355",
                secret,
                rate=50,
                count=12,
                duplicate_share=0.5,
                callback_sock=sock,
                wait=20,
                seed=7,
            )
        )
        while not task.done():  # the worker's part, in this test's loop
            await pump()
            await asyncio.wait([task], timeout=0.2)
        summary = task.result()
    finally:
        await set_partner(app, "12355")
    assert summary.accepted == 12 and not summary.failed
    assert summary.duplicates >= 1 and summary.sent == 12 + summary.duplicates
    assert summary.callbacks["已受理"] == 12 and summary.bad_signatures == 0
    assert {m["external_id"] for m in summary.messages} == set(summary.orders)
    assert summary.lines()[-1] == "收到反馈：已受理 12"
