"""The `hotline` command: run the service, migrate, manage users (and more as it grows)."""

import asyncio
import sys
from typing import Annotated

import typer
from sqlalchemy import select

from db.engine import make_engine, make_sessionmaker, transaction
from db.models import AppUser, Department, Jurisdiction
from db.settings import get_settings
from dispatch import schema
from dispatch.auth import ROLES, hash_password

app = typer.Typer(help="未保热线：受理与转介服务", no_args_is_help=True, add_completion=False)
user_app = typer.Typer(help="管理工作人员账号", no_args_is_help=True)
app.add_typer(user_app, name="user")


def _database_url() -> str:
    url = get_settings().database_url
    if not url:
        typer.echo("需要 DATABASE_URL（或使用 hotline up 启动内置数据库）", err=True)
        raise typer.Exit(2)
    return url


def _read_secret(prompt: str) -> str:
    """From stdin: a pipe gives the first line; a terminal asks without echo."""
    if sys.stdin.isatty():
        return typer.prompt(prompt, hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


@app.command()
def migrate() -> None:
    """Bring the database schema up to date and load reference data."""
    schema.migrate(_database_url())
    typer.echo("数据库已是最新")


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Option(help="登录名")],
    role: Annotated[str, typer.Option(help="/".join(ROLES))],
    department: Annotated[str | None, typer.Option(help="部门代码，如 police")] = None,
    jurisdiction: Annotated[str | None, typer.Option(help="辖区代码")] = None,
    phone: Annotated[str | None, typer.Option(help="接收督办短信的手机号")] = None,
) -> None:
    """Add a staff member; the password is read from stdin."""
    if role not in ROLES:
        raise typer.BadParameter(f"角色应为 {', '.join(ROLES)} 之一", param_hint="--role")
    if role == "liaison" and not department:
        raise typer.BadParameter("部门联络员需要 --department", param_hint="--department")
    password = _read_secret("密码")
    if len(password) < 8:
        typer.echo("密码至少 8 位", err=True)
        raise typer.Exit(2)
    asyncio.run(_add_user(username, role, department, jurisdiction, phone, password))
    typer.echo(f"已添加用户 {username}（{role}）")


async def _add_user(
    username: str,
    role: str,
    department: str | None,
    jurisdiction: str | None,
    phone: str | None,
    password: str,
) -> None:
    engine = make_engine(_database_url(), pool_size=1)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            if department and not await session.get(Department, department):
                raise typer.BadParameter("未知的部门代码", param_hint="--department")
            if jurisdiction and not await session.get(Jurisdiction, jurisdiction):
                raise typer.BadParameter("未知的辖区代码", param_hint="--jurisdiction")
            exists = await session.execute(select(AppUser.id).where(AppUser.username == username))
            if exists.first():
                raise typer.BadParameter("登录名已存在", param_hint="--username")
            session.add(
                AppUser(
                    username=username,
                    password_hash=hash_password(password),
                    role=role,
                    department_code=department,
                    jurisdiction_code=jurisdiction,
                    phone=phone,
                )
            )
    finally:
        await engine.dispose()


@app.command()
def api() -> None:
    """Serve the HTTP API only (production: one container per process kind)."""
    from dispatch.serve import serve_api

    serve_api(get_settings(), _database_url(), _redis_url())


def _redis_url() -> str:
    url = get_settings().redis_url
    if not url:
        typer.echo("需要 REDIS_URL（或使用 hotline up 启动内置 Redis）", err=True)
        raise typer.Exit(2)
    return url


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="处理完队列中的任务后退出")] = False,
) -> None:
    """Run an RQ worker on the center's queues and every office queue."""
    from dispatch.worker import run_worker

    run_worker(_database_url(), _redis_url(), burst=burst)


@app.command()
def scheduler() -> None:
    """Run the outbox relay and the deadline/visit sweeps."""
    import logging

    from dispatch.scheduler import run_scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run_scheduler(_database_url(), _redis_url()))


@app.command()
def up() -> None:
    """Migrate, load reference data and run everything (embedded PostgreSQL/Redis if no URLs)."""
    from dispatch.serve import run_all

    raise typer.Exit(run_all(get_settings()))


if __name__ == "__main__":
    app()
