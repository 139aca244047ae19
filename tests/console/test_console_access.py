"""The access matrix: every role × every endpoint of the app (walked from its routes, so a new
endpoint is covered without touching this file) × a case in and a case out of the caller's
scope. Nothing leaks: a case's content reaches only those whose role and scope (department ×
jurisdiction subtree) admit it, the reporter's identity only the center and police; nobody
changes a case outside their scope; anonymous callers are refused everywhere but the public
doors."""

import io
import json
import re
import secrets
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import func, select
from starlette.routing import Mount

from db.models import CaseEvent, Report
from db.models_children import CaseChild
from dispatch.tasks.service import create_task
from tests.fixtures import lookups
from tests.fixtures.console import form_token
from tests.fixtures.reports import report

pytest_plugins = ("tests.fixtures.console", "tests.fixtures.twilio")

# Doors that are open by design (and still must not leak).
PUBLIC = {
    ("GET", "/openapi.json"),  # the contract: public (spec api.md)
    ("GET", "/docs"),  # only sends a browser to the console's docs page (signed in)
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/reports"),
    ("GET", "/api/v1/reports/challenge"),  # the proof of work an API reporter may send
    ("GET", "/report"),
    ("POST", "/report"),
    ("GET", "/api/v1/receipts/{receipt_code}"),
    ("GET", "/"),  # the landing page
    ("GET", "/receipt"),  # the receipt lookup as a form
    ("GET", "/console/login"),
    ("POST", "/console/login"),
}
PUBLIC_PREFIXES = ("/channels/twilio/", "/api/v1/forwards/")  # signed by the partner
# The walk's writes leave who may see the case as it was, so the last route is judged
# like the first. Its workflow event does not finish the case (a finished case cancels its
# open referrals, and with them the departments' sight of it: `case_filter`); its routing
# by hand names a department the case has already (refused as a duplicate), not a new one
# that would then see it.
CASE_EVENT = "assess"
ROUTE_TO = "police"


@dataclass
class Subject:
    """One case and everything hanging off it, with marker strings to look for."""

    case_id: int
    referral_id: int
    receipt_code: str
    call_sid: str
    thread_id: int
    callback_id: int
    story: str  # in the description
    child: str
    reporter: str
    phone_digits: str  # the reporter's number, national digits
    child_id: int  # the child's file, opened at intake
    task_id: int  # a task for the case's civil-affairs office

    def params(self) -> dict[str, str]:
        return {
            "case_id": str(self.case_id),
            "referral_id": str(self.referral_id),
            "receipt_code": self.receipt_code,
            "call_sid": self.call_sid,
            "thread_id": str(self.thread_id),
            "callback_id": str(self.callback_id),
            "block_id": "1",
            "rest": "no-such-page",
            "source": "110",
            "message_id": "1",
            # supervision: an order, a district's periodic report, its step or file
            "order_id": "1",
            "district": "990102",
            "period": "2025Q1",
            "code": "2025Q1",
            "event": "review",
            "fmt": "xlsx",
            "child_id": str(self.child_id),
            "sibling_id": str(self.child_id),  # refused as the child itself, after scope
            "task_id": str(self.task_id),
            "meeting_id": "1",
            "report_id": "1",
        }


@dataclass
class Caller:
    name: str
    headers: dict[str, str]
    console: httpx.AsyncClient
    csrf: str
    sees_case: bool  # the in-scope case's content
    sees_reporter: bool


async def _subject(client, pump, sessions, seed, jurisdiction: str) -> Subject:
    mark = secrets.token_hex(4)
    phone = "139" + "".join(secrets.choice("0123456789") for _ in range(8))
    body = report(
        jurisdiction=jurisdiction,
        description=f"矩阵标记{mark}：孩子身上有伤",
        child={"name": f"童{mark}", "age": 8, "gender": "female"},
        reporter={"name": f"报告人{mark}", "unit": "第一小学", "role": "teacher", "phone": phone},
    )
    created = (await client.post("/api/v1/reports", json=body)).json()
    await pump()
    case_id = created["case_id"]
    referral_id = await lookups.referral_id(sessions, case_id, "police")
    async with sessions() as session:
        receipt = (
            await session.execute(select(Report.receipt_code).where(Report.case_id == case_id))
        ).scalar_one()
        child_id = await session.scalar(
            select(CaseChild.child_id).where(CaseChild.case_id == case_id)
        )
    records = await seed.hotline_records(case_id, "+86" + phone)
    async with sessions() as session, session.begin():
        task = await create_task(session=session, case_id=case_id, source="matrix",
                                 source_id=mark, department_code="civil_affairs", due="3wd",
                                 title="矩阵测试任务", actor="system:test", now=datetime.now(UTC))
    return Subject(
        case_id=case_id,
        referral_id=referral_id,
        receipt_code=receipt,
        story=f"矩阵标记{mark}",
        child=f"童{mark}",
        reporter=f"报告人{mark}",
        phone_digits=phone,
        child_id=child_id,
        task_id=task.id,
        **records,
    )


def _routes(app) -> list[tuple[str, str]]:
    found = []
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, Mount):
            continue
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                found.append((method, route.path))
    return found


def _fill(path: str, subject: Subject) -> str:
    params = subject.params()

    def one(match: re.Match) -> str:
        name = match.group(1).split(":")[0]
        assert name in params, f"the access matrix needs a value for path parameter {name!r}"
        return params[name]

    return re.sub(r"\{([^}]+)\}", one, path)


def _json_body(path: str, subject: Subject) -> dict:
    """A plausible body for each kind of write, so the request reaches the scope check."""
    last = path.rstrip("/").split("/")[-1]
    bodies = {
        "events": {"event": CASE_EVENT, "reason": "矩阵测试"},
        "assessment": {"risk_level": "red"},
        "visits": {"findings": "矩阵测试"},
        "progress": {"note": "矩阵测试"},
        "complete": {"outcome": "矩阵测试"},
        "return": {"reason": "矩阵测试"},
        "replies": {"text": "矩阵测试"},
        "report": report(description="矩阵测试来电"),
        "link": {"case_id": subject.case_id},
        "attempts": {"outcome": "no_answer"},
        "blocks": {"call_sid": subject.call_sid, "hours": 1, "reason": "矩阵测试"},
        "siblings": {"sibling_id": subject.child_id, "reason": "矩阵测试"},
    }
    if "/route/" in path:
        return {"department": ROUTE_TO}
    if path == "/api/v1/cases/{case_id}":  # the correction (PATCH); a GET ignores it
        return {"emergency": True, "reason": "矩阵测试"}
    if path == "/api/v1/triage":
        return {"text": "矩阵测试：孩子正在被打"}
    return bodies.get(last, {})


def _form_body(path: str, csrf: str) -> dict:
    form = {
        "csrf_token": csrf,
        "event": CASE_EVENT,
        "reason": "矩阵测试",
        "risk_level": "red",
        "findings": "矩阵测试",
        "note": "矩阵测试",
        "outcome": "矩阵测试",
        "text": "矩阵测试",
        "department": ROUTE_TO,
        "departments": ["police", "education"],
        "notes": "矩阵测试",
        "description": "矩阵测试来电",
    }
    if path == "/console/logout":
        form.pop("csrf_token")  # stays signed in: a logout without the token is refused
    return form


def _visible_text(response: httpx.Response) -> str:
    """What the response shows, including inside an XLSX (zipped XML)."""
    text = response.text if "spreadsheet" not in response.headers.get("content-type", "") else ""
    if not text and response.content[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(response.content)) as book:
            text = "".join(book.read(n).decode() for n in book.namelist())
    return json.dumps(dict(response.headers)) + text


@dataclass
class Matrix:
    inside: Subject
    outside: Subject
    callers: list[Caller]
    api: httpx.AsyncClient
    anonymous: httpx.AsyncClient  # no cookies ever set on it: console pages unsigned-in

    async def send(self, caller: Caller | None, method: str, path: str, subject: Subject):
        url = _fill(path, subject)
        if path.startswith("/console"):
            client = caller.console if caller else self.anonymous
            if method == "GET":
                return await client.get(url)
            form = _form_body(path, caller.csrf if caller else "")
            return await client.request(method, url, data=form)
        headers = caller.headers if caller else {}
        body = _json_body(path, subject)
        return await self.api.request(method, url, headers=headers, json=body or None)


@pytest.fixture(scope="module")
async def matrix(app, client, pump, sessions, seed, make_user, login, console_client):
    inside = await _subject(client, pump, sessions, seed, "990102001001")
    outside = await _subject(client, pump, sessions, seed, "990103001001")
    people = [
        ("operator", None, True, True),
        ("caseworker", None, True, True),
        ("supervisor", None, True, True),
        ("liaison", "police", True, True),
        ("supervisor", "police", True, True),
        ("liaison", "civil_affairs", True, False),
        ("supervisor", "civil_affairs", True, False),
        ("liaison", "education", False, False),
        ("supervisor", "education", False, False),
        ("admin", None, False, False),
        # Area staff see only cases paired with them: none here (default deny).
        ("child_director", None, False, False),
        ("station_worker", None, False, False),
    ]
    callers = []
    for role, department, sees_case, sees_reporter in people:
        user = await make_user(role, department, "990102")
        console = await console_client(user)
        page = await console.get("/console", follow_redirects=True)
        callers.append(
            Caller(
                f"{role}/{department or 'center'}",
                await login(user),
                console,
                form_token(page.text),
                sees_case,
                sees_reporter,
            )
        )
    return Matrix(inside, outside, callers, client, await console_client())


async def _events(sessions, case_id: int) -> int:
    async with sessions() as session:
        return await session.scalar(
            select(func.count()).select_from(CaseEvent).where(CaseEvent.case_id == case_id)
        )


async def test_every_endpoint_refuses_what_the_role_and_scope_do_not_admit(
    app, matrix, sessions, twilio, run_jobs
):
    inside, outside, callers = matrix.inside, matrix.outside, matrix.callers
    routes = _routes(app)
    assert len(routes) > 80 and ("GET", "/console/cases/{case_id}") in routes
    outside_events = await _events(sessions, outside.case_id)
    leaks: list[str] = []
    shown_to: set[str] = set()

    def check(who: str, sees_case: bool, sees_reporter: bool, subject: Subject, label, response):
        text = _visible_text(response)
        banned = []
        # Full numbers: never in a list; in a record only to those who may know the reporter.
        if not sees_reporter or "{" not in label[1]:
            banned.append(subject.phone_digits)
        if not sees_case:
            banned += [subject.story, subject.child]
        if not sees_reporter:
            banned.append(subject.reporter)
        for marker in banned:
            if marker in text:
                leaks.append(f"{who} {label} → {response.status_code} shows {marker}")
        if sees_case and subject.story in text:
            shown_to.add(f"{who} {label[1]}")

    for method, path in routes:
        public = (method, path) in PUBLIC or path.startswith(PUBLIC_PREFIXES)
        for subject in (outside, inside):
            anonymous = await matrix.send(None, method, path, subject)
            check("anonymous", False, False, subject, (method, path), anonymous)
            if not public:
                denied = anonymous.status_code == 401 or (
                    anonymous.status_code == 303
                    and anonymous.headers["location"].startswith("/console/login")
                )
                if not denied:
                    leaks.append(f"anonymous {method} {path} → {anonymous.status_code}")
            for caller in callers:
                response = await matrix.send(caller, method, path, subject)
                assert response.status_code < 500, (
                    f"{caller.name} {method} {path}: {response.text}"
                )
                in_scope = subject is inside
                check(
                    caller.name,
                    caller.sees_case and in_scope,
                    caller.sees_reporter and in_scope,
                    subject,
                    (method, path),
                    response,
                )
    assert leaks == [], "\n".join(leaks)
    # Nobody changed the case they may not see.
    assert await _events(sessions, outside.case_id) == outside_events
    # The matrix is not vacuous: the entitled do see the in-scope case, on the API and pages.
    for caller in callers:
        for path in ("/api/v1/cases/{case_id}", "/console/cases/{case_id}"):
            assert (f"{caller.name} {path}" in shown_to) == caller.sees_case, (caller.name, path)
    await run_jobs()  # the SMS replies the entitled sent leave, instead of lingering


async def test_the_reporter_is_shown_to_the_center_and_police_only(matrix):
    inside = matrix.inside
    for caller in matrix.callers:
        page = await caller.console.get(f"/console/cases/{inside.case_id}")
        api = await matrix.api.get(f"/api/v1/cases/{inside.case_id}", headers=caller.headers)
        for response in (page, api):
            assert (inside.reporter in response.text) == caller.sees_reporter, caller.name
        # The page shows the number masked until asked (and audited); the API's record
        # carries it for those who may know the reporter.
        assert inside.phone_digits not in page.text
        assert (inside.phone_digits in api.text) == caller.sees_reporter, caller.name


def test_the_audit_log_has_no_way_to_change_it(app):
    for method, path in _routes(app):
        if "audit" in path:
            assert method == "GET", (method, path)
