"""The service acts as a role that can write rows but not change the audit log or its trigger."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from db.engine import APP_ROLE, make_engine


async def test_the_running_service_acts_as_the_app_role(sessions):
    async with sessions() as session:
        assert await session.scalar(text("SELECT current_user")) == APP_ROLE


@pytest.mark.parametrize(
    "attempt",
    [
        "DROP TRIGGER audit_log_no_change ON audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER ALL",
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change",
        "DROP FUNCTION audit_log_append_only() CASCADE",
        "ALTER TABLE audit_log ADD COLUMN x int",
        "UPDATE audit_log SET actor = 'x'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "DROP TABLE audit_log",
        "UPDATE alembic_version SET version_num = '0001'",
    ],
)
async def test_the_app_role_cannot_rewrite_the_audit_log(database_url, attempt):
    engine = make_engine(database_url, pool_size=1, role=APP_ROLE)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO audit_log (actor, action, object_type) VALUES ('t', 't', 't')")
            )
        with pytest.raises(DBAPIError) as refused:
            async with engine.begin() as conn:
                await conn.execute(text(attempt))
        assert "permission denied" in str(refused.value) or "must be owner" in str(refused.value)
    finally:
        await engine.dispose()
