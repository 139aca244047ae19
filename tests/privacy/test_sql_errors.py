"""A failing statement's message names the SQL, never its values: the phone numbers and names
bound to it would otherwise reach logs and worker failure records."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from db.engine import make_engine

PHONE, NAME = "13800138000", "王小明"


async def test_a_failing_statement_carries_no_parameter_values(database_url):
    engine = make_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("CREATE TEMP TABLE person (phone text UNIQUE, name text)"))
            insert = text("INSERT INTO person VALUES (:phone, :name)")
            await conn.execute(insert, {"phone": PHONE, "name": NAME})
            with pytest.raises(DBAPIError) as failed:
                await conn.execute(insert, {"phone": PHONE, "name": NAME})
    finally:
        await engine.dispose()
    message = f"{failed.value}\n{failed.value!r}"
    assert "INSERT INTO person" in message  # the statement is still named
    assert PHONE not in message and NAME not in message, message
