"""The `hotline` command: run the service, migrate, manage users (and more as it grows)."""

import asyncio
import contextlib
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy import func, text

from db.engine import make_engine, make_sessionmaker, transaction
from db.settings import Settings, get_settings
from dispatch.ops import schema, startup
from dispatch.ops.first_run import announce_when_up, embedded_log
from dispatch.ops.local_servers import (
    Servers,
    ServersUnavailable,
    embedded_installed,
    running_embedded_url,
    servers_for,
)
from dispatch.staff.auth import PRINCIPAL_TTL, ROLES
from workflows.partners.forwards import sources

T = TypeVar("T")

app = typer.Typer(help="未保热线：受理与转介服务", no_args_is_help=True, add_completion=False)
user_app = typer.Typer(help="管理工作人员账号", no_args_is_help=True)
app.add_typer(user_app, name="user")
partner_app = typer.Typer(help="管理对接平台（110、12345、12355）", no_args_is_help=True)
app.add_typer(partner_app, name="partner")
triage_app = typer.Typer(help="研判：训练模型、导出运营更正的标注", no_args_is_help=True)
app.add_typer(triage_app, name="triage")
children_app = typer.Typer(help="儿童档案：匹配键、台账导入", no_args_is_help=True)
app.add_typer(children_app, name="children")
keys_app = typer.Typer(help="个人信息加密密钥：轮换与重新加密", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _database_url() -> str:
    """DATABASE_URL, or the embedded PostgreSQL a running `hotline up` serves."""
    settings = get_settings()
    url = settings.database_url or running_embedded_url(settings)
    if not url:
        typer.echo("需要 DATABASE_URL（或使用 hotline up 启动内置数据库）", err=True)
        raise typer.Exit(2)
    return url


@contextlib.contextmanager
def _servers(settings: Settings, *, redis: bool) -> Iterator[Servers]:
    """`local_servers.servers_for`, its refusal as a message and exit status 2."""
    try:
        with servers_for(settings, redis=redis) as servers:
            yield servers
    except ServersUnavailable as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def _read_secret(prompt: str) -> str:
    """From stdin: a pipe gives the first line; a terminal asks without echo."""
    if sys.stdin.isatty():
        return typer.prompt(prompt, hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


@app.command()
def migrate() -> None:
    """Bring the database schema up to date and load reference data."""
    from dispatch.ops.index_key import IndexKeyMismatch

    startup.start(get_settings(), "migrate")
    try:
        schema.migrate(_database_url())
    except IndexKeyMismatch as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo("数据库已是最新")


def _running_redis_url(settings: Settings) -> str | None:
    """REDIS_URL, or the embedded Redis a running `hotline up` serves."""
    if settings.redis_url:
        return settings.redis_url
    sock = Path(settings.hotline_data_dir).resolve() / "redis" / "redis.sock"
    return f"unix://{sock}" if sock.exists() else None


async def _tell_running_services(settings: Settings) -> bool:
    """After a committed account change: running API processes drop what they cached."""
    from redis.asyncio import Redis

    from dispatch.staff.auth import accounts_changed

    url = _running_redis_url(settings)
    if not url:
        return False
    redis = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        return await accounts_changed(redis)
    finally:
        await redis.aclose()


def _account_op(operation: Callable[..., Awaitable[T]], **kwargs: Any) -> T:
    """Run one `dispatch.staff.accounts` operation as this shell's user, in a transaction;
    a refusal is printed (exit status 1), and so is a change's message. An operation that
    ends access is announced to the running services, and said so if it could not be."""
    from dispatch.staff.accounts import Actor, Change
    from workflows.errors import DomainError

    settings = get_settings()

    async def run() -> T:
        engine = make_engine(_database_url(), pool_size=1)
        try:
            async with transaction(make_sessionmaker(engine)) as session:
                result = await operation(session=session, actor=Actor.command_line(), **kwargs)
        finally:
            await engine.dispose()
        changed = not isinstance(result, list)  # a list is a read
        if changed and not await _tell_running_services(settings):
            if not isinstance(result, Change) or result.ends_access:
                typer.echo(
                    f"注意：无法连接 Redis，运行中的服务最多 {PRINCIPAL_TTL:g} 秒后才会察觉此更改",
                    err=True,
                )
        return result

    try:
        result = asyncio.run(run())
    except DomainError as exc:
        typer.echo(f"未执行：{exc.message}", err=True)
        raise typer.Exit(1) from None
    if isinstance(result, Change):
        typer.echo(result.message)
    return result


def _new_password() -> str:
    password = _read_secret("密码")
    if len(password) < 8:
        typer.echo("密码至少 8 位", err=True)
        raise typer.Exit(2)
    return password


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Option(help="登录名")],
    role: Annotated[str, typer.Option(help="/".join(ROLES))],
    department: Annotated[str | None, typer.Option(help="部门代码，如 police")] = None,
    jurisdiction: Annotated[str | None, typer.Option(help="辖区代码")] = None,
    phone: Annotated[str | None, typer.Option(help="接收督办短信的手机号")] = None,
) -> None:
    """Add a staff member; the password is read from stdin."""
    from dispatch.staff import accounts

    if role not in ROLES:
        raise typer.BadParameter(f"角色应为 {', '.join(ROLES)} 之一", param_hint="--role")
    password = _new_password()
    _account_op(
        accounts.add_user,
        username=username,
        role=role,
        department=department,
        jurisdiction=jurisdiction,
        phone=phone,
        password=password,
    )


@user_app.command("list")
def user_list() -> None:
    """Every account: role, department, jurisdiction, state, second factor, last sign-in."""
    from dispatch.console.timefmt import local
    from dispatch.staff import accounts

    rows = _account_op(accounts.list_users)
    typer.echo(
        f"{'登录名':<24} {'角色':<15} {'部门':<24} {'辖区':<13} {'状态':<4} {'两步验证':<5}"
        " 最近登录"
    )
    for a in rows:
        typer.echo(
            f"{a.username:<27} {a.role:<17} {a.department or '-':<26} {a.jurisdiction or '-':<15}"
            f" {'启用' if a.active else '停用':<4} {'已开启' if a.totp else '未开启':<6}"
            f" {local(a.last_login_at) if a.last_login_at else '从未（或无记录）'}"
        )
    typer.echo(f"共 {len(rows)} 个账号，其中停用 {sum(not a.active for a in rows)} 个")


UsernameArg = Annotated[str, typer.Argument(help="登录名")]


def _username_command(name: str, operation: str, help_text: str) -> None:
    """`hotline user NAME USERNAME`: the `accounts` operation of that name on one user, nothing
    else to ask; one place for the commands that differ only in which operation they run."""

    def command(username: UsernameArg) -> None:
        from dispatch.staff import accounts

        _account_op(getattr(accounts, operation), username=username)

    command.__doc__ = help_text
    user_app.command(name)(command)


_username_command(
    "disable",
    "disable",
    "Disable an account: no sign-in, its tokens and console sessions end at once.",
)
_username_command("enable", "enable", "Enable a disabled account again (its old tokens stay void).")


@user_app.command("set-role")
def user_set_role(
    username: UsernameArg,
    role: Annotated[str, typer.Option(help="/".join(ROLES))],
    department: Annotated[str | None, typer.Option(help="部门代码（不填即不属于任何部门）")] = None,
    jurisdiction: Annotated[str | None, typer.Option(help="辖区代码（不填即清除）")] = None,
) -> None:
    """Change the role, department and jurisdiction together; the user signs in again."""
    from dispatch.staff import accounts

    _account_op(
        accounts.set_role,
        username=username,
        role=role,
        department=department,
        jurisdiction=jurisdiction,
    )


@user_app.command("reset-password")
def user_reset_password(username: UsernameArg) -> None:
    """Set a new password, read from stdin like `add`; every sign-in of the user ends."""
    from dispatch.staff import accounts

    password = _new_password()
    _account_op(accounts.reset_password, username=username, password=password)


_username_command(
    "revoke",
    "revoke",
    "End every token and console session of the user now (a lost laptop, a leaked token).",
)


@user_app.command("totp-enable")
def user_totp_enable(
    username: UsernameArg,
    replace: Annotated[bool, typer.Option(help="已开启时换一个新的验证器（原验证器失效）")] = False,
) -> None:
    """Give the user a TOTP second factor; the secret is printed once, here only."""
    from dispatch.staff import accounts

    setup = _account_op(accounts.totp_enable, username=username, replace=replace)
    typer.echo(f"已为账号 {username} 开启两步验证；其已有的令牌和控制台会话立即失效。")
    typer.echo("以下内容只显示这一次，请当面交给本人，在验证器应用中扫描或手动输入：")
    typer.echo("  otpauth 链接（可生成二维码扫描）：")
    typer.echo(f"    {setup.uri}")
    typer.echo("  密钥（手动输入时使用）：")
    typer.echo(f"    {setup.secret}")
    typer.echo("此后登录须同时输入验证器中的6位动态码。")


_username_command(
    "totp-disable",
    "totp_disable",
    "Remove the user's second factor (a lost phone); give a new one with totp-enable.",
)


@partner_app.command("add")
def partner_add(
    source: Annotated[str, typer.Option(help="110、12345 或 12355")],
    callback_url: Annotated[
        str | None, typer.Option(help="接收办理结果反馈的地址（http/https）")
    ] = None,
) -> None:
    """Add a partner, or replace its secret and callback URL; the secret is read from stdin."""
    if source not in sources():
        raise typer.BadParameter("来源应为 110、12345 或 12355", param_hint="--source")
    if callback_url and not callback_url.startswith(("http://", "https://")):
        raise typer.BadParameter(
            "回调地址应以 http:// 或 https:// 开头", param_hint="--callback-url"
        )
    secret = _read_secret("共享密钥")
    if len(secret) < 16:
        typer.echo("共享密钥至少 16 个字符", err=True)
        raise typer.Exit(2)
    asyncio.run(_save_partner(source, callback_url, secret))
    typer.echo(f"已保存对接平台 {source}" + (f"，反馈地址 {callback_url}" if callback_url else ""))


async def _save_partner(source: str, callback_url: str | None, secret: str) -> None:
    from sqlalchemy.dialects.postgresql import insert

    from channels.partners.secrets import seal
    from db.partners import Partner
    from db.settings import secret_key
    from workflows.partners.forwards import source_name

    box = seal(secret_key(get_settings()), secret)
    engine = make_engine(_database_url(), pool_size=1)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            stmt = insert(Partner).values(
                source=source, name=source_name(source), secret_box=box, callback_url=callback_url
            )
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["source"],
                    set_={
                        "secret_box": box,
                        "callback_url": callback_url,
                        "active": True,
                        "updated_at": func.now(),
                    },
                )
            )
    finally:
        await engine.dispose()


@partner_app.command("list")
def partner_list() -> None:
    """The partners, their callback URLs and how much feedback waits (never the secrets)."""

    async def rows() -> list:
        engine = make_engine(_database_url(), pool_size=1)
        try:
            async with make_sessionmaker(engine)() as session:
                return list(
                    await session.execute(
                        text(
                            "SELECT p.source, p.name, p.callback_url, p.active,"
                            " (SELECT count(*) FROM partner_message m WHERE m.partner_id = p.id"
                            "  AND m.delivered_at IS NULL) AS waiting"
                            " FROM partner p ORDER BY p.source"
                        )
                    )
                )
        finally:
            await engine.dispose()

    for row in asyncio.run(rows()):
        state = "启用" if row.active else "停用"
        typer.echo(
            f"{row.source}\t{row.name}\t{state}\t{row.callback_url or '-'}\t待送达 {row.waiting}"
        )


@keys_app.command("rotate")
def keys_rotate(
    reencrypt_only: Annotated[
        bool,
        typer.Option(
            "--reencrypt-only",
            help="不生成新密钥，只把密文改用密钥环中最新的密钥（HOTLINE_DATA_KEY 已换过时）",
        ),
    ] = False,
) -> None:
    """Put a new data key first in the ring (the data dir's key file; running services
    write under it within seconds) and re-encrypt every sealed field under it. Old keys stay
    in the ring: values not yet rewritten still read."""
    from db.crypto import DataKeyError, ring, rotate_key_file
    from db.reseal import reseal

    settings = get_settings()
    if not reencrypt_only:
        try:
            kid = rotate_key_file(settings)
        except DataKeyError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
        typer.echo(f"新密钥 {kid} 已置于密钥环最前")

    async def run() -> dict[str, int]:
        engine = make_engine(_database_url(), pool_size=1)
        try:
            return await reseal(make_sessionmaker(engine))
        finally:
            await engine.dispose()

    counts = asyncio.run(run())
    for column, count in counts.items():
        typer.echo(f"{column}\t重新加密 {count} 条")
    typer.echo(f"全部密文已使用密钥 {ring().current}（共 {sum(counts.values())} 条改写）")


@children_app.command("keys")
def children_keys() -> None:
    """Compute the matching keys of every report and child record (after an upgrade, or
    after the matching rules changed)."""
    from dispatch.children.matching_service import backfill_child_keys, backfill_keys

    async def run() -> tuple[int, int]:
        engine = make_engine(_database_url(), pool_size=1)
        try:
            async with make_sessionmaker(engine)() as session, session.begin():
                return await backfill_keys(session), await backfill_child_keys(session)
        finally:
            await engine.dispose()

    reports, children = asyncio.run(run())
    typer.echo(f"已更新 {reports} 份报告、{children} 份儿童档案的匹配键")


@children_app.command("import")
def children_import(
    path: Annotated[Path, typer.Argument(help="台账文件（.xlsx 或 .csv）", exists=True)],
    jurisdiction: Annotated[
        str | None, typer.Option(help="文件没有“辖区”列时各行所属的辖区代码")
    ] = None,
    canvass: Annotated[bool, typer.Option("--canvass", help="排查摸底（标记走访日期）")] = False,
    apply: Annotated[bool, typer.Option("--apply", help="写入（默认只预览，不写入）")] = False,
) -> None:
    """Import a district's ledger of children (or a canvassing round): a dry run unless
    --apply, with the rows that are new, matched and conflicting."""
    from dispatch.children.ledger import import_file
    from dispatch.children.records import system_principal
    from workflows.errors import DomainError

    async def run():
        engine = make_engine(_database_url(), pool_size=1)
        try:
            return await import_file(
                make_sessionmaker(engine), system_principal("ledger"), path.name,
                path.read_bytes(), kind="canvass" if canvass else "ledger",
                dry_run=not apply, jurisdiction=jurisdiction)
        finally:
            await engine.dispose()

    try:
        report = asyncio.run(run())
    except DomainError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(2) from exc
    c = report.counts
    for row in report.rows:
        if row["status"] in ("conflicting", "invalid"):
            why = row["message"] or "、".join(row["reasons"])
            typer.echo(f"第{row['row']}行 {row['status']} {row['name'] or ''} {why}")
    typer.echo(("预览（未写入任何数据，加 --apply 写入）" if report.dry_run else "已导入") +
               f"：新增 {c['new']}，已有档案 {c['matched']}，冲突待核实 {c['conflicting']}，"
               f"无效 {c['invalid']}")
    if report.not_seen:
        typer.echo(f"超过规定期限未走访的儿童：{len(report.not_seen)} 名")


@triage_app.command("export")
def triage_export(
    out: Annotated[str | None, typer.Option(help="写入的文件（默认标准输出）")] = None,
    every: Annotated[
        bool, typer.Option("--all", help="每次更正各一行（默认每个案件取最近一次）")
    ] = False,
) -> None:
    """Operators' corrections as labelled examples, JSONL in the corpus format."""
    from dispatch.triage.export import corpus_lines

    async def lines() -> list[str]:
        engine = make_engine(_database_url(), pool_size=1)
        try:
            async with make_sessionmaker(engine)() as session:
                return [line async for line in corpus_lines(session, every=every)]
        finally:
            await engine.dispose()

    found = asyncio.run(lines())
    body = "".join(line + "\n" for line in found)
    if out:
        with open(out, "w", encoding="utf-8") as target:
            target.write(body)
        typer.echo(f"已导出 {len(found)} 条更正样本到 {out}", err=True)
    else:
        sys.stdout.write(body)


@app.command()
def simulate(
    source: Annotated[str, typer.Option(help="扮演的平台：110、12345 或 12355")] = "12345",
    url: Annotated[str | None, typer.Option(help="本服务地址（默认 http://HOST:PORT）")] = None,
    rate: Annotated[float, typer.Option(help="每秒发送工单数")] = 5.0,
    count: Annotated[int, typer.Option(help="工单总数")] = 20,
    concurrency: Annotated[int, typer.Option(help="最多同时在途的请求数")] = 32,
    callback_port: Annotated[int, typer.Option(help="接收反馈的端口（0 不接收）")] = 8765,
    wait: Annotated[float, typer.Option(help="发完后等待受理反馈的秒数")] = 30.0,
    register: Annotated[
        bool, typer.Option(help="生成密钥并把本模拟器登记为该平台（需能连上数据库）")
    ] = False,
) -> None:
    """Play a partner: send signed work orders at a rate and receive the feedback."""
    import socket

    from dispatch.ops.simulate import run

    if source not in sources():
        raise typer.BadParameter("来源应为 110、12345 或 12355", param_hint="--source")
    settings = get_settings()
    url = url or f"http://{settings.hotline_host}:{settings.hotline_port}"
    sock = None
    if callback_port:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", callback_port))
        sock.listen(128)
    if register:
        import secrets

        secret = secrets.token_urlsafe(32)
        callback = f"http://127.0.0.1:{sock.getsockname()[1]}/callback" if sock else None
        asyncio.run(_save_partner(source, callback, secret))
        typer.echo(f"已登记模拟平台 {source}，反馈地址 {callback or '-'}")
    else:
        secret = _read_secret("共享密钥")
    typer.echo(f"向 {url} 发送 {count} 个 {source} 工单，每秒 {rate} 个…")
    summary = asyncio.run(
        run(
            url,
            source,
            secret,
            rate=rate,
            count=count,
            concurrency=concurrency,
            callback_sock=sock,
            wait=wait if sock else 0.0,
        )
    )
    for line in summary.lines():
        typer.echo(line)
    if summary.failed:
        raise typer.Exit(1)


@app.command()
def demo(
    force: Annotated[bool, typer.Option(help="数据库中已有案件时也载入（不建议）")] = False,
) -> None:
    """Load a demo city: one account per role and department, and a few cases."""
    from dispatch.ops.demo import DemoRefused, load_demo

    settings = get_settings()
    with _servers(settings, redis=True) as servers:
        schema.migrate(servers.database_url)
        try:
            result = asyncio.run(
                load_demo(settings, servers.database_url, servers.redis_url or "", force=force)
            )
        except DemoRefused as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
    typer.echo("演示账号（密码只显示这一次）：")
    for a in result.accounts:
        typer.echo(f"  {a.username:<32} {a.password:<14} {a.describe()}")
    typer.echo("演示案件：")
    for c in result.cases:
        typer.echo(f"  #{c.case_id:<5} 回执 {c.receipt_code}  {c.what}")
    url = f"http://{settings.hotline_host}:{settings.hotline_port}"
    typer.echo(f"用 hotline up 启动后打开 {url}/console 登录，{url}/receipt 查询回执。")


@app.command()
def retention(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="只统计将匿名化、删除的数量，不写入")
    ] = False,
) -> None:
    """Anonymise or delete what is past its retention period (retention.toml); with
    --dry-run, print how many of each kind would be, and change nothing. Counts only: no
    personal data is printed. The scheduler runs the same job daily."""
    from db import clock
    from dispatch.retention.job import run_retention
    from workflows.config import ConfigError

    async def run():
        engine = make_engine(_database_url(), pool_size=2)
        try:
            return await run_retention(
                make_sessionmaker(engine), get_settings(), clock.now(), dry_run=dry_run
            )
        finally:
            await engine.dispose()

    try:
        outcome = asyncio.run(run())
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo("预览（未写入任何数据）" if dry_run else "已按保存期限处理")
    for line in outcome.lines():
        typer.echo(line)
    if any(outcome.failed.values()):
        raise typer.Exit(1)


def _on_database(settings: Settings, operation: Callable[..., T], **kwargs: Any) -> T:
    """Run `backup.backup` or `backup.restore` on this installation's database (the
    embedded one started for the while if need be) with the pg tools that fit it; a
    refusal or failure is printed, exit status 1."""
    from dispatch.ops.backup import BackupError

    with _servers(settings, redis=False) as servers:
        try:
            return operation(
                servers.database_url,
                embedded=servers.embedded_postgres,
                pg_bin=settings.hotline_pg_bin,
                **kwargs,
            )
        except BackupError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None


@app.command()
def backup(
    to: Annotated[
        Path | None, typer.Option(help="备份目录（默认 HOTLINE_BACKUP_DIR 或 数据目录/backups）")
    ] = None,
    keep: Annotated[
        int | None, typer.Option(help="只保留最新的几个备份（默认 HOTLINE_BACKUP_KEEP）")
    ] = None,
) -> None:
    """Dump the database (pg_dump, custom format) and keep only the newest backups."""
    from dispatch.ops.backup import backup as dump

    settings = get_settings()
    folder = to or settings.hotline_backup_dir or Path(settings.hotline_data_dir) / "backups"
    made, removed = _on_database(
        settings, dump, folder=Path(folder), keep=keep or settings.hotline_backup_keep
    )
    typer.echo(f"已备份到 {made}（{made.stat().st_size} 字节）")
    for old in removed:
        typer.echo(f"已删除旧备份 {old.name}")


@app.command()
def restore(
    file: Annotated[Path, typer.Argument(help="hotline backup 生成的备份文件")],
    force: Annotated[bool, typer.Option(help="目标数据库不是空的时也覆盖（先停止服务）")] = False,
) -> None:
    """Restore a backup into an empty database (or, with --force, over the current one)."""
    from dispatch.ops.backup import restore as load

    _on_database(get_settings(), load, dump=file, force=force)
    typer.echo(f"已从 {file} 恢复；如备份来自旧版本，请再运行 hotline migrate")


@app.command()
def api() -> None:
    """Serve the HTTP API only (production: one container per process kind)."""
    from dispatch.ops.serve import serve_api

    startup.start(get_settings(), "api")
    _check_index_key()
    serve_api(get_settings(), _database_url(), _redis_url())


def _check_index_key() -> None:
    """Refuse to start with a key ring whose oldest key is not the blind indexes' one."""
    from dispatch.ops.index_key import IndexKeyMismatch, ensure

    try:
        ensure(_database_url())
    except IndexKeyMismatch as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


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
    """Run an RQ worker on the center's queues and every office queue (survives Redis outages)."""
    from dispatch.worker.process import run_worker

    startup.start(get_settings(), "worker")
    _check_index_key()
    run_worker(_database_url(), _redis_url(), burst=burst)


@app.command()
def scheduler() -> None:
    """Run the outbox relay, the reconciler and the deadline/visit sweeps."""
    from dispatch.ops.liveness import beating, heartbeat_file
    from dispatch.worker.scheduler import run_scheduler

    startup.start(get_settings(), "scheduler")
    _check_index_key()
    beat = heartbeat_file(get_settings(), "scheduler")
    asyncio.run(beating(run_scheduler(_database_url(), _redis_url()), beat))


@app.command()
def health(
    kind: Annotated[str, typer.Option(help="api、worker 或 scheduler")] = "api",
) -> None:
    """Exit 0 when this host's process of the kind is alive (container healthchecks)."""
    from dispatch.ops import liveness

    if kind not in liveness.KINDS:
        raise typer.BadParameter("应为 api、worker 或 scheduler", param_hint="--kind")
    settings = get_settings()
    if kind == "api":
        problem = liveness.check_api(settings)
    elif kind == "worker":
        problem = liveness.check_worker(_redis_url())
    else:
        problem = liveness.check_scheduler(settings)
    if problem:
        typer.echo(f"{kind} 不健康：{problem}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{kind} 正常")


@app.command()
def up() -> None:
    """Migrate, load reference data and run everything (embedded PostgreSQL/Redis if no URLs)."""
    from dispatch.ops.serve import run_all

    settings = get_settings()
    if not (settings.database_url and settings.redis_url) and not embedded_installed():
        typer.echo(
            "未设置 DATABASE_URL / REDIS_URL，也未安装内置数据库"
            "（pip install 'hotline[embedded]'）",
            err=True,
        )
        raise typer.Exit(2)
    log_file = embedded_log(settings) if not settings.database_url else None
    threading.Thread(target=announce_when_up, args=(settings, log_file), daemon=True).start()
    raise typer.Exit(run_all(settings))


@triage_app.command("train")
def triage_train(
    corpus: Annotated[
        Path | None, typer.Option(help="语料目录（默认 HOTLINE_CONFIG_DIR/corpus 或内置语料）")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="模型文件（默认 HOTLINE_CONFIG_DIR 或内置的 triage_model.json.gz）"),
    ] = None,
) -> None:
    """Train the triage model from the labelled corpus, reproducibly (fixed seeds)."""

    from workflows.triage.model import MODEL_FILE
    from workflows.triage.train import CorpusError, corpus_dir, train

    folder = corpus or corpus_dir()
    if not folder.is_dir():
        typer.echo(f"语料目录不存在：{folder}", err=True)
        raise typer.Exit(2)
    override = get_settings().hotline_config_dir
    target = out or (override / MODEL_FILE if override else None)
    try:
        artefact = train(folder, target)
    except CorpusError as exc:
        typer.echo(f"语料有误：{exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"已训练 {artefact['version']}：{artefact['examples']} 条语料，"
               f"{len(artefact['features'])} 个特征，"
               f"紧急阈值 {artefact['thresholds']['emergency']}")


if __name__ == "__main__":
    app()
