"""Personal data at rest: what a dump of the database shows, and what a key change keeps."""

import multiprocessing
import secrets
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from sqlalchemy.exc import IntegrityError

from db import crypto
from db.engine import make_engine
from db.settings import Settings


@pytest.fixture
def own_ring(tmp_path):
    """This test's own key ring in a data dir of its own; the run's ring is put back after."""
    saved = list(crypto._configured)
    settings = Settings(hotline_data_dir=tmp_path, hotline_data_key=None)
    crypto.configure(settings)
    crypto.reload()
    yield settings
    crypto._configured[:] = saved
    crypto.reload()


def test_a_value_is_stored_unreadable_and_reads_back(own_ring):
    sealed = crypto.encrypt("张小明 13800138000")
    assert "张小明" not in sealed and "13800138000" not in sealed
    assert sealed.startswith(crypto.ring().current + ":")
    assert crypto.decrypt(sealed) == "张小明 13800138000"
    # A random nonce: the same value twice is two different texts (no frequency analysis).
    assert crypto.encrypt("13800138000") != crypto.encrypt("13800138000")


def test_an_altered_value_is_refused_not_misread(own_ring):
    sealed = crypto.encrypt("110101201001011234")
    kid, body = sealed.split(":")
    flipped = body[:-6] + ("A" if body[-6] != "A" else "B") + body[-5:]
    with pytest.raises(InvalidTag):
        crypto.decrypt(f"{kid}:{flipped}")


def test_a_value_under_a_key_the_ring_lacks_says_so(own_ring):
    sealed = crypto.encrypt("13800138000")
    (own_ring.hotline_data_dir / crypto.KEY_FILE).write_text(crypto.new_key_entry() + "\n")
    crypto.reload()
    with pytest.raises(crypto.DataKeyError):
        crypto.decrypt(sealed)


def test_the_data_key_is_generated_private_and_apart_from_the_token_key(own_ring):
    crypto.encrypt("x")
    path = Path(own_ring.hotline_data_dir) / crypto.KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert not (Path(own_ring.hotline_data_dir) / "secret_key").exists()


def test_rotation_writes_under_the_new_key_and_still_reads_the_old(own_ring):
    old = crypto.encrypt("13800138000")
    index = crypto.phone_index("+8613800138000")
    new_kid = crypto.rotate_key_file(own_ring)
    assert crypto.ring().current == new_kid
    assert not crypto.is_current(old)
    assert crypto.decrypt(old) == "13800138000"
    assert crypto.encrypt("y").startswith(new_kid + ":")
    # Lookups keep finding rows indexed before the rotation.
    assert crypto.phone_index("+8613800138000") == index


def test_a_ring_in_the_environment_is_not_rewritten(own_ring):
    with pytest.raises(crypto.DataKeyError):
        crypto.rotate_key_file(
            Settings(hotline_data_key="k1", hotline_data_dir=Path("/nonexistent"))
        )


def test_blind_index_is_keyed_and_kind_separated(own_ring, tmp_path_factory):
    a = crypto.blind_index("phone", "+8613800138000")
    assert a == crypto.blind_index("phone", " +86 13800138000 ")
    assert a != crypto.blind_index("id_number", "+8613800138000")
    crypto.configure(Settings(hotline_data_dir=tmp_path_factory.mktemp("other")))
    crypto.reload()
    # Someone with the database but not the key cannot test a guessed number against it.
    assert crypto.blind_index("phone", "+8613800138000") != a


def _start_and_read(folder: str, start, out) -> None:
    crypto.configure(Settings(hotline_data_dir=Path(folder), hotline_data_key=None))
    start.wait()
    out.put(crypto.ring().current)


def test_processes_starting_together_share_one_complete_key(tmp_path):
    """Check-then-write let some of four processes read an empty key; now all agree."""
    ctx = multiprocessing.get_context("fork")
    for round_ in range(5):
        folder = tmp_path / str(round_)
        start, out = ctx.Barrier(8), ctx.Queue()
        procs = [
            ctx.Process(target=_start_and_read, args=(str(folder), start, out)) for _ in range(8)
        ]
        for p in procs:
            p.start()
        kids = {out.get(timeout=60) for _ in procs}
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        assert len(kids) == 1
        entries = (folder / crypto.KEY_FILE).read_text().split()
        assert len(entries) == 1 and crypto.key_id(crypto._key_bytes(entries[0])) in kids


_secrets = sa.Table(
    "crypto_probe",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("phone", crypto.EncryptedText),
    sa.Column("child", crypto.EncryptedJSON),
    sa.Column("phone_index", sa.Text, unique=True),
)


@pytest.fixture
async def probe_engine(database_url):
    """The run's database with a probe table of encrypted columns (dropped after)."""
    engine = make_engine(database_url, pool_size=1)
    async with engine.begin() as conn:
        await conn.run_sync(_secrets.metadata.create_all)
    yield engine
    async with engine.begin() as conn:
        await conn.run_sync(_secrets.metadata.drop_all)
    await engine.dispose()


async def test_encrypted_columns_hold_ciphertext_in_the_database(
    probe_engine, database_url, own_ring
):
    child = {"name": "王小红", "id_number": "110101201001011234"}
    async with probe_engine.begin() as conn:
        await conn.execute(
            _secrets.insert(),
            {
                "phone": "+8613800138000",
                "child": child,
                "phone_index": crypto.phone_index("+8613800138000"),
            },
        )
    async with probe_engine.connect() as conn:
        row = (await conn.execute(sa.select(_secrets))).one()
        found = await conn.scalar(
            sa.select(_secrets.c.id).where(
                _secrets.c.phone_index == crypto.phone_index("+8613800138000")
            )
        )
    assert (row.phone, row.child, found) == ("+8613800138000", child, row.id)
    raw = await asyncpg.connect(database_url)
    try:
        dump = str(await raw.fetch("SELECT * FROM crypto_probe"))
    finally:
        await raw.close()
    for plain in ("13800138000", "王小红", "110101201001011234"):
        assert plain not in dump


async def test_a_failed_statement_does_not_carry_its_values(probe_engine):
    """An error logged or shown (a unique violation) names the SQL, not the phone number."""
    secret = "+86139" + "".join(secrets.choice("0123456789") for _ in range(8))
    with pytest.raises(IntegrityError) as failed:
        async with probe_engine.begin() as conn:
            for _ in range(2):
                await conn.execute(
                    sa.text("INSERT INTO crypto_probe (phone_index) VALUES (:p)"), {"p": secret}
                )
    assert secret not in str(failed.value)
    assert "hidden" in str(failed.value)
