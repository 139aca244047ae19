"""`hotline demo`: a demo city to try every console in a minute.

One account per role and one liaison per department, each liaison at the office of their
department that the demo's neighbourhood (幸福街道) is routed to, so their queue is not
empty. The cases are made the way real ones are: the web form over HTTP, an SMS through
the inbound SMS service, and staff moving them through the staff API with their own tokens.
The background jobs those writes queue (registration, routing, notifications) are run here,
in this process, by the worker's own handlers, so no worker needs to be running.

Only for a new database (no cases yet), unless forced: demo cases in a real city's data
would be reported, routed and counted like real ones.
"""

import asyncio
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.sms.inbound import InboundSms, receive
from db.engine import make_engine, make_sessionmaker, transaction
from db.handlers import JobContext
from db.models import AppUser, Case, Jurisdiction, Office, Outbox, Referral, Report
from db.settings import Settings
from dispatch.staff.auth import hash_password
from workflows.cases import receipts
from workflows.reference import department_labels, jurisdiction_labels

# All demo cases lie under this street, so every liaison below sees some of them.
NEIGHBOURHOOD = "990102001001"  # 湖东区幸福街道幸福里社区
SETTLE_TIMEOUT = 60.0  # seconds to wait for a case's background work (a busy worker)
ROLE_LABELS = {
    "operator": "接线员",
    "caseworker": "个案社工",
    "supervisor": "督导",
    "admin": "管理员",
    "liaison": "联络员",
}


class DemoRefused(RuntimeError):
    """The database already holds cases."""


@dataclass
class Account:
    username: str
    role: str
    department: str | None
    jurisdiction: str
    password: str = field(default_factory=lambda: secrets.token_urlsafe(9))

    def describe(self) -> str:
        where = jurisdiction_labels().get(self.jurisdiction, self.jurisdiction)
        dept = department_labels().get(self.department, "") if self.department else "未保中心"
        return f"{dept}{ROLE_LABELS[self.role]}（{where}）"


@dataclass
class DemoCase:
    receipt_code: str
    case_id: int
    what: str


@dataclass
class Demo:
    accounts: list[Account]
    cases: list[DemoCase]


async def has_cases(sessions: async_sessionmaker[AsyncSession]) -> bool:
    async with sessions() as session:
        return bool(await session.scalar(select(func.count()).select_from(Case)))


async def plan_accounts(session: AsyncSession) -> list[Account]:
    """Center staff at the city root; each department's liaison at the nearest office
    above the neighbourhood (where routing sends that department's referrals)."""
    root = await session.scalar(select(Jurisdiction.code).where(Jurisdiction.level == 1))
    path = await session.scalar(select(Jurisdiction.path).where(Jurisdiction.code == NEIGHBOURHOOD))
    if root is None or path is None:
        raise RuntimeError(f"reference data has no jurisdiction {NEIGHBOURHOOD}")
    chain = [c for c in path.split("/") if c]  # root first
    offices = await session.execute(select(Office.department_code, Office.jurisdiction_code))
    nearest: dict[str, str] = {}
    for dept, where in offices:
        if where in chain and chain.index(where) >= chain.index(nearest.get(dept, chain[0])):
            nearest[dept] = where
    accounts = [
        Account(f"demo_{role}", role, None, root)
        for role in ("operator", "caseworker", "supervisor", "admin")
    ]
    accounts += [
        Account(f"demo_{dept}", "liaison", dept, where) for dept, where in sorted(nearest.items())
    ]
    return accounts


async def save_accounts(session: AsyncSession, accounts: list[Account]) -> None:
    """Insert, or with --force give an existing demo account its new password."""
    for a in accounts:
        stmt = insert(AppUser).values(
            username=a.username,
            password_hash=hash_password(a.password),
            role=a.role,
            department_code=a.department,
            jurisdiction_code=a.jurisdiction,
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["username"],
                set_={
                    k: stmt.excluded[k]
                    for k in ("password_hash", "role", "department_code", "jurisdiction_code")
                },
            )
        )


async def run_pending_jobs(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> int:
    """Run the outbox rows due now with the worker's handlers, each in the lock that the
    relay respects (SKIP LOCKED), and mark them relayed so no worker runs them again. A row
    whose handler fails is left for the real relay and worker."""
    from dispatch.worker.jobs import handlers

    table, context, failed, ran = handlers(), JobContext(sessions, settings), set(), 0
    while True:
        async with transaction(sessions) as session:
            row = await session.scalar(
                select(Outbox)
                .where(
                    Outbox.relayed_at.is_(None),
                    Outbox.available_at <= datetime.now(UTC),
                    Outbox.id.not_in(failed or {0}),
                )
                .order_by(Outbox.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if row is None:
                return ran
            try:
                await table[row.topic](context, row.payload)
            except Exception:  # noqa: BLE001 - retried later by the real worker
                failed.add(row.id)
                continue
            row.relayed_at = datetime.now(UTC)
            ran += 1


class _Demo:
    """The steps, with an HTTP client on the app and the staff's tokens."""

    def __init__(self, http: httpx.AsyncClient, sessions, settings: Settings, accounts) -> None:
        self.http, self.sessions, self.settings = http, sessions, settings
        self.accounts = {a.username: a for a in accounts}
        self.tokens: dict[str, dict[str, str]] = {}

    async def as_(self, username: str) -> dict[str, str]:
        if username not in self.tokens:
            a = self.accounts[username]
            answer = await self.http.post(
                "/api/v1/auth/token", data={"username": a.username, "password": a.password}
            )
            answer.raise_for_status()
            self.tokens[username] = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        return self.tokens[username]

    async def call(self, method: str, path: str, who: str, **kw) -> dict:
        answer = await self.http.request(method, path, headers=await self.as_(who), **kw)
        if answer.status_code >= 400:
            code = answer.json().get("error", {}).get("code")
            raise RuntimeError(f"demo step {method} {path} answered {answer.status_code} {code}")
        return answer.json()

    async def settle(self, case_id: int, *, referrals: bool = True) -> None:
        """Run background work until the case is registered and routed (or a running
        worker did it), so the next step sees what a person would see."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            await run_pending_jobs(self.sessions, self.settings)
            async with self.sessions() as session:
                case = await session.get(Case, case_id)
                routed = await session.scalar(
                    select(func.count()).select_from(Referral).where(Referral.case_id == case_id)
                )
            if case is not None and case.state != "discovered" and (routed or not referrals):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"demo case {case_id} was not registered in time")
            await asyncio.sleep(0.2)

    async def web_form(self, **fields: str | list[str]) -> DemoCase:
        """The HTML form, as a reporter's browser sends it (cookie and CSRF token)."""
        form = await self.http.get("/report")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token, "the report form has no CSRF token"
        data = {"csrf_token": token.group(1), "in_danger_now": "no", **fields}
        done = await self.http.post("/report", data=data)
        if done.status_code != 201:
            raise RuntimeError(f"the demo report was refused ({done.status_code})")
        code = re.search(r'id="receipt-code">([^<]+)<', done.text).group(1)
        return await _case_of(self.sessions, Report.receipt_code == receipts.normalize(code))

    async def json_report(self, body: dict) -> DemoCase:
        created = await self.http.post("/api/v1/reports", json=body)
        created.raise_for_status()
        out = created.json()
        return DemoCase(out["receipt_code"], out["case_id"], "")

    async def referral_of(self, case_id: int, department: str) -> int:
        async with self.sessions() as session:
            return await session.scalar(
                select(Referral.id).where(
                    Referral.case_id == case_id, Referral.department_code == department
                )
            )

    async def work(self, referral_id: int, liaison: str, action: str, body: dict) -> None:
        """The department's liaison claims the referral and records `action` on it."""
        await self.call("POST", f"/api/v1/referrals/{referral_id}/claim", liaison)
        await self.call("POST", f"/api/v1/referrals/{referral_id}/{action}", liaison, json=body)

    async def event(self, case_id: int, event: str, reason: str | None = None) -> None:
        body = {"event": event, **({"reason": reason} if reason else {})}
        await self.call("POST", f"/api/v1/cases/{case_id}/events", "demo_caseworker", json=body)

    async def assess(self, case_id: int, level: str, guardianship: str) -> None:
        await self.event(case_id, "assess")
        await self.call(
            "POST",
            f"/api/v1/cases/{case_id}/assessment",
            "demo_caseworker",
            json={"risk_level": level, "guardianship": guardianship},
        )


def _reporter(**child: str) -> dict:
    return {
        "reporter": {
            "name": "演示老师",
            "unit": "东湖市演示小学",
            "role": "teacher",
            "phone": "13800000000",
        },
        "child": {"gender": "unknown", **child},
    }


async def _cases(d: _Demo) -> list[DemoCase]:
    made: list[DemoCase] = []
    # Each load's reports differ, so a forced second load is not taken for a double click.
    tag = f"（演示 {secrets.token_hex(2)}）"

    # 1. A mandatory report through the web form: registered and routed, waiting for claims.
    one = await d.web_form(
        reporter_name="演示老师",
        reporter_role="teacher",
        reporter_phone="13800000000",
        situations=["4"],
        categories=["domestic_violence"],
        child_name="演示甲",
        child_age="9",
        child_gender="male",
        jurisdiction=NEIGHBOURHOOD,
        description=tag + "学生身上多处淤青，称家长酒后打人。",
    )
    await d.settle(one.case_id)
    one.what = "强制报告表单 → 已登记，转介待各部门认领"
    made.append(one)

    # 2. Bullying: education claims and works it, police returns its share; being handled.
    two = await d.json_report(
        {
            **_reporter(name="演示乙", age=12),
            "situations": [],
            "categories": ["bullying"],
            "jurisdiction": "990102001002",
            "description": tag + "学生在校多次被同学围堵索要财物。",
            "in_danger_now": False,
        }
    )
    await d.settle(two.case_id)
    education = await d.referral_of(two.case_id, "education")
    note = {"note": "（演示）已约谈双方家长，安排心理老师跟进"}
    await d.work(education, "demo_education", "progress", note)
    police = await d.referral_of(two.case_id, "police")
    if police:
        await d.work(
            police, "demo_police", "return", {"reason": "（演示）未涉及违法犯罪，由学校处理"}
        )
    await d.assess(two.case_id, "yellow", "（演示）父母在家，监护正常")
    await d.event(two.case_id, "handle")
    two.what = "校园欺凌 → 处置中：教育已认领办理，公安退回待重新指派"
    made.append(two)

    # 3. A child begging in danger: emergency, police act at once; followed up and closed.
    three = await d.json_report(
        {
            **_reporter(name="演示丙", age=6),
            "situations": [8],
            "categories": ["street_begging"],
            "jurisdiction": NEIGHBOURHOOD,
            "description": tag + "地铁口有成年人带幼童乞讨。",
            "in_danger_now": True,
        }
    )
    await d.settle(three.case_id)
    for referral in await _open_referrals(d.sessions, three.case_id, "police"):
        await d.work(
            referral, "demo_police", "complete", {"outcome": "（演示）已出警，儿童由救助站临时照料"}
        )
    await d.assess(three.case_id, "blue", "（演示）已联系到监护人")
    await d.event(three.case_id, "handle")
    await d.event(three.case_id, "follow_up")
    await d.event(three.case_id, "close", "（演示）已回归家庭，监护人接受教育")
    three.what = "紧急：乞讨 → 公安处置完毕，已结案"
    made.append(three)

    # 4. An SMS report: waits for an operator to register it.
    sid = "SMdemo" + secrets.token_hex(13)
    sender = f"+861380000{secrets.randbelow(10000):04d}"  # a new thread on each load
    async with transaction(d.sessions) as session:
        await receive(
            session,
            InboundSms(
                sid=sid,
                sender=sender,
                reporter_phone=sender,
                body=tag + "邻居家的孩子好几天没人管了，一直在哭",
            ),
            ip=None,
        )
    await run_pending_jobs(d.sessions, d.settings)
    four = await _case_of(d.sessions, Report.external_id == sid)
    four.what = "短信举报 → 待接线员登记"
    made.append(four)
    return made


async def _case_of(sessions, where) -> DemoCase:
    async with sessions() as session:
        row = (
            await session.execute(select(Report.receipt_code, Report.case_id).where(where))
        ).one()
    return DemoCase(receipts.display(row.receipt_code), row.case_id, "")


async def _open_referrals(sessions, case_id: int, department: str) -> list[int]:
    async with sessions() as session:
        return list(
            (
                await session.execute(
                    select(Referral.id).where(
                        Referral.case_id == case_id,
                        Referral.department_code == department,
                        Referral.status == "queued",
                    )
                )
            ).scalars()
        )


async def load_demo(
    settings: Settings, database_url: str, redis_url: str, *, force: bool = False
) -> Demo:
    """Accounts and cases; refused (DemoRefused) when the database has cases, unless forced."""
    from dispatch.app import create_app

    engine = make_engine(database_url, pool_size=2)
    sessions = make_sessionmaker(engine)
    try:
        if not force and await has_cases(sessions):
            raise DemoRefused("数据库中已有案件；演示数据只载入新数据库（确需载入请加 --force）")
        async with transaction(sessions) as session:
            accounts = await plan_accounts(session)
            await save_accounts(session, accounts)
        app = create_app(settings, database_url=database_url, redis_url=redis_url)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 0))
            async with httpx.AsyncClient(transport=transport, base_url="http://demo") as http:
                cases = await _cases(_Demo(http, sessions, settings, accounts))
        return Demo(accounts, cases)
    finally:
        await engine.dispose()
