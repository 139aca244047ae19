"""The consoles' defences, seen from outside: markup in report text is shown as text on every
page that shows it; sessions end when idle (polling is not acting) or on logout; forms
without the session's CSRF token change nothing; the sign-in answers the same for an
unknown name and a wrong password and stops guessers; reads and writes of cases are in the
audit log with who, what, when and from where; lists mask phone and ID numbers."""

import re
import secrets
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from limits import RateLimitItemPerSecond
from markupsafe import escape
from sqlalchemy import select

from db.models import AppUser, AuditLog, Case
from dispatch.console import sessions as console_sessions
from dispatch.staff import login_limits
from tests.fixtures import lookups
from tests.fixtures.console import XSS, form_token, sign_in
from tests.fixtures.reports import report
from tests.fixtures.servers import PASSWORD

pytest_plugins = ("tests.fixtures.console", "tests.fixtures.twilio")

CONSOLE_IP = "198.51.100.9"  # the console_client fixture's address


def assert_inert(response: httpx.Response, *texts: str) -> None:
    """Each text is on the page, escaped; none of it arrives as markup."""
    assert response.status_code == 200, response.text[:500]
    for text in texts:
        assert text not in response.text, f"raw markup on {response.url}: {text}"
        assert str(escape(text)) in response.text, f"{text} not shown on {response.url}"
    for raw in XSS:
        assert raw not in response.text, f"raw markup on {response.url}: {raw}"


# ---------------------------------------------------------------------------------------
# Markup in what people type is shown as text


async def test_markup_in_reports_notes_and_messages_is_shown_escaped_on_every_page(
    hostile, make_user, console_client, sessions
):
    bad = await hostile()
    script, img, svg = XSS
    supervisor = await console_client(await make_user("supervisor"))  # the center, at the root

    operator_page = await supervisor.get("/console/operator")
    assert f'href="/console/cases/{bad.case_id}"' in operator_page.text
    assert_inert(operator_page, bad.description)
    fragment = await supervisor.get(
        "/console/operator/incoming", params={"after": 0}, headers={"X-Console-Poll": "1"}
    )
    assert_inert(fragment, bad.description)

    case_page = await supervisor.get(f"/console/cases/{bad.case_id}")
    assert_inert(case_page, bad.description, bad.child, bad.reporter, bad.note, bad.reason)
    revealed = await supervisor.post(
        f"/console/cases/{bad.case_id}/reveal", data={"csrf_token": form_token(case_page.text)}
    )
    assert_inert(revealed, bad.description, bad.child, bad.reporter)

    found = await supervisor.get("/console/search", params={"q": str(bad.case_id)})
    assert_inert(found, bad.description)
    assert len(re.findall(r'href="/console/cases/\d+"', found.text.split('id="results"')[1])) == 1
    # What was searched for is shown back in the box, as text.
    searched = await supervisor.get("/console/search", params={"q": svg})
    assert_inert(searched, svg)

    assert_inert(await supervisor.get(f"/console/sms/{bad.thread_id}"), bad.sms)
    assert_inert(
        await supervisor.get(f"/console/referrals/{bad.police_referral_id}"),
        bad.description,
        bad.child,
        bad.reporter,
        bad.note,
    )
    assert_inert(await supervisor.get("/console/board"), bad.reason)
    caseworker = await console_client(await make_user("caseworker"))
    assert_inert(await caseworker.get("/console/cases"), bad.reason)

    police = await console_client(bad.police)
    assert_inert(await police.get("/console/liaison"))
    assert_inert(
        await police.get(f"/console/referrals/{bad.police_referral_id}"),
        bad.description,
        bad.reporter,
        bad.note,
    )

    # The audit log: a person's name (typed by whoever set the account up) and the filter.
    # (sent as the filter form sends it: the empty case-number box too)
    log = await supervisor.get(
        "/console/audit", params={"actor": bad.username, "action": "", "case_id": ""}
    )
    assert_inert(log, bad.username)
    rows = log.text.split('id="audit-rows"')[1]
    assert str(escape(bad.username)) in rows and "登录" in rows

    # A sign-in link carrying markup in where to go next.
    login = await console_client()
    assert_inert(await login.get("/console/login", params={"next": f"/console/{svg}"}), svg)


async def test_a_report_form_sent_back_for_correction_shows_the_markup_as_typed(
    seed, make_user, console_client
):
    operator = await console_client(await make_user("operator"))
    call_sid = await seed.waiting_call(phone="+86139" + str(secrets.randbelow(10**8)).zfill(8))
    url = f"/console/operator/calls/{call_sid}/report"
    page = await operator.get(url)
    script, img, svg = XSS
    sent = await operator.post(
        url,
        data={
            "csrf_token": form_token(page.text),
            "description": script,
            "child_name": img,
            "child_age": "40",  # out of range: the form comes back
            "reporter_name": svg,
        },
    )
    assert sent.status_code == 422
    for text in XSS:
        assert text not in sent.text and str(escape(text)) in sent.text


# ---------------------------------------------------------------------------------------
# Sessions


class HeldClock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC).timestamp()

    def __call__(self) -> float:
        return self.at

    def advance(self, minutes: float) -> None:
        self.at += minutes * 60


@pytest.fixture
def clock(monkeypatch) -> HeldClock:
    """The sessions' clock, held still and moved only by the test."""
    held = HeldClock()
    monkeypatch.setattr(console_sessions, "now", held)
    return held


POLL = {"X-Console-Poll": "1"}


async def test_an_idle_session_ends_and_polling_does_not_keep_it_alive(
    clock, make_user, console_client
):
    console = await console_client(await make_user("operator"))
    assert (await console.get("/console/operator")).status_code == 200

    clock.advance(20)
    polled = await console.get("/console/operator/incoming", headers=POLL)
    assert polled.status_code == 200
    clock.advance(11)  # 31 minutes since the person last did anything
    polled = await console.get("/console/operator/incoming", headers=POLL)
    assert polled.status_code == 401 and polled.headers["X-Console-Login"] == "1"

    page = await console.get("/console/operator")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/console/login?reason=")
    clock.at = datetime.now(UTC).timestamp()  # ended for good, whatever the clock says
    again = await console.get("/console/operator", follow_redirects=True)
    assert "工作人员登录" in again.text and "退出" not in again.text.split("</header>")[0]


async def test_the_idle_notice_and_acting_keeps_the_session_alive(
    clock, make_user, console_client
):
    console = await console_client(await make_user("operator"))
    for _ in range(3):  # a person acting every 25 minutes stays signed in
        clock.advance(25)
        assert (await console.get("/console/search")).status_code == 200
    clock.advance(30.5)
    ended = await console.get("/console/search", follow_redirects=True)
    assert "因长时间未操作，已自动退出，请重新登录" in ended.text
    assert ended.url.path == "/console/login"


async def test_logout_ends_the_session_and_the_old_cookie_no_longer_works(
    make_user, console_client, app, sessions
):
    user = await make_user("caseworker")
    console = await console_client(user)
    page = await console.get("/console/cases")
    old = console.cookies["hotline_console"]
    replay = await console_client()  # someone who copied the cookie
    replay.cookies.set("hotline_console", old, domain="testserver.local", path="/console")
    assert (await replay.get("/console/cases")).status_code == 200
    out = await console.post("/console/logout", data={"csrf_token": form_token(page.text)})
    assert out.status_code == 303 and out.headers["location"] == "/console/login?reason=logout"
    assert "hotline_console" not in console.cookies
    notice = await console.get(out.headers["location"])
    assert "您已安全退出" in notice.text

    # Whoever kept a copy of the cookie now gets the sign-in page, not the cases.
    for path in ("/console/cases", "/console/search"):
        answer = await replay.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/console/login")
    async with sessions() as session:
        row = (
            await session.execute(
                select(AuditLog)
                .where(AuditLog.actor_id == user.id, AuditLog.action == "auth.logout")
            )
        ).scalar_one()
    assert row.ip == CONSOLE_IP


async def test_sign_in_sets_a_fresh_strict_http_only_cookie(make_user, console_client):
    user = await make_user("operator")
    console = await console_client()
    console.cookies.set(
        "hotline_console", "chosen-by-an-attacker", domain="testserver.local", path="/console"
    )
    signed = await sign_in(console, user.username)
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    fresh = re.search(r"hotline_console=([^;]+)", signed.headers["set-cookie"]).group(1)
    assert fresh != "chosen-by-an-attacker" and len(fresh) >= 40
    console.cookies.clear()
    console.cookies.set("hotline_console", fresh, domain="testserver.local", path="/console")
    page = await console.get("/console/operator")
    assert page.status_code == 200
    for header in ("content-security-policy", "x-frame-options", "cache-control"):
        assert header in page.headers


async def test_console_forms_without_the_sessions_csrf_token_change_nothing(
    make_user, console_client, new_case, sessions
):
    case_id = await new_case()
    console = await console_client(await make_user("caseworker"))
    other = await console_client(await make_user("caseworker"))
    others_token = form_token((await other.get("/console/cases")).text)
    url = f"/console/cases/{case_id}/assessment"
    for token in (None, "", "forged", others_token):
        data = {"risk_level": "red"} | ({"csrf_token": token} if token is not None else {})
        refused = await console.post(url, data=data)
        assert refused.status_code == 403
        assert "页面已过期或来源无法验证，请刷新页面后重试" in refused.text
        assert refused.headers["content-type"].startswith("text/html")
    # Not a form at all (a script's JSON): refused before any token is read.
    as_json = await console.post(url, json={"risk_level": "red"})
    assert as_json.status_code == 415
    async with sessions() as session:
        assert (await session.get(Case, case_id)).risk_level is None
        assert not (
            await session.execute(
                select(AuditLog.id).where(
                    AuditLog.action == "case.assess", AuditLog.object_id == str(case_id)
                )
            )
        ).first()

    # Logout without the token leaves the person signed in.
    assert (await console.post("/console/logout", data={"next": ""})).status_code == 403
    page = await console.get(f"/console/cases/{case_id}")
    assert page.status_code == 200
    saved = await console.post(url, data={"risk_level": "red", "csrf_token": form_token(page.text)})
    assert saved.status_code == 303
    async with sessions() as session:
        assert (await session.get(Case, case_id)).risk_level == "red"


async def test_the_sign_in_form_needs_its_own_token(make_user, console_client):
    user = await make_user("operator")
    console = await console_client()
    await console.get("/console/login")
    refused = await console.post(
        "/console/login", data={"username": user.username, "password": PASSWORD}
    )
    assert refused.status_code == 400 and "页面已过期，请重新输入" in refused.text
    assert "hotline_console" not in console.cookies


def _without_tokens(html: str) -> str:
    return re.sub(r'name="login_token" value="[^"]+"', "", html)


@pytest.fixture
async def guesser(app):
    """A console client from an address of its own (the per-address limit is shared)."""
    ip = f"192.0.2.{secrets.randbelow(200) + 20}"
    transport = httpx.ASGITransport(app=app, client=(ip, 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        c.ip = ip
        yield c


async def test_unknown_name_and_wrong_password_get_the_same_answer(
    make_user, guesser, sessions
):
    user = await make_user("operator")
    wrong = await sign_in(guesser, user.username, "not the password")
    unknown = await sign_in(guesser, f"nobody_{secrets.token_hex(3)}", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "用户名或密码错误" in wrong.text
    assert _without_tokens(wrong.text) == _without_tokens(unknown.text)
    async with sessions() as session:
        failed = (
            await session.execute(
                select(AuditLog).where(
                    AuditLog.action == "auth.login_failed", AuditLog.ip == guesser.ip
                )
            )
        ).scalars().all()
    assert len(failed) == 2 and {r.actor for r in failed} == {"anonymous"}


async def test_password_guessing_is_slowed_and_the_right_password_works_after_the_wait(
    make_user, guesser, monkeypatch, limits_clock
):
    # The same ladder as the API's (one mechanism), in seconds: 3 misses in any 2 s.
    monkeypatch.setattr(login_limits, "ACCOUNT_LADDER", (RateLimitItemPerSecond(3, 2),))
    user = await make_user("operator")
    for _ in range(3):
        assert (await sign_in(guesser, user.username, "guess")).status_code == 401
    slowed = await sign_in(guesser, user.username)  # the right password, during the wait
    assert slowed.status_code == 429
    wait = int(slowed.headers["Retry-After"])
    assert 0 < wait <= 2
    assert re.search(r"登录尝试过于频繁，请 \d+ 秒后再试", slowed.text)
    assert "hotline_console" not in guesser.cookies
    limits_clock.advance(wait + 0.1)
    assert (await sign_in(guesser, user.username)).status_code == 303
    assert "hotline_console" in guesser.cookies


# ---------------------------------------------------------------------------------------
# Audit and masking


async def _rows_since(sessions, actor_id: int, after: int) -> list[AuditLog]:
    async with sessions() as session:
        return list(
            (
                await session.execute(
                    select(AuditLog)
                    .where(AuditLog.actor_id == actor_id, AuditLog.id > after)
                    .order_by(AuditLog.id)
                )
            ).scalars()
        )


async def _last_id(sessions) -> int:
    async with sessions() as session:
        return (await session.execute(select(AuditLog.id).order_by(AuditLog.id.desc()))).scalar()


def _check(row: AuditLog, user: AppUser, action: str, object_id) -> None:
    assert row.action == action
    assert row.actor_id == user.id and row.actor == f"{user.role}:{user.username}"
    assert row.object_id == str(object_id)
    assert row.ip == CONSOLE_IP
    assert abs(datetime.now(UTC) - row.at) < timedelta(minutes=1)


async def test_reading_a_case_and_seeing_a_full_number_are_audited(
    make_user, console_client, new_case, sessions
):
    case_id = await new_case()
    user = await make_user("caseworker")
    console = await console_client(user)
    mark = await _last_id(sessions)

    page = await console.get(f"/console/cases/{case_id}")
    assert "138****8000" in page.text and "13800138000" not in page.text
    [read] = [r for r in await _rows_since(sessions, user.id, mark) if r.action.startswith("case.")]
    _check(read, user, "case.read", case_id)

    mark = read.id
    shown = await console.post(
        f"/console/cases/{case_id}/reveal", data={"csrf_token": form_token(page.text)}
    )
    assert shown.status_code == 200 and "8613800138000" in shown.text
    rows = [r for r in await _rows_since(sessions, user.id, mark) if r.action.startswith("case.")]
    assert [r.action for r in rows] == ["case.read", "case.reveal"]
    _check(rows[1], user, "case.reveal", case_id)
    assert rows[1].detail == {"fields": ["reporter.phone"]}

    # Without the token: no number, no row.
    mark = await _last_id(sessions)
    refused = await console.post(f"/console/cases/{case_id}/reveal", data={"x": ""})
    assert refused.status_code == 403 and "8613800138000" not in refused.text
    assert await _rows_since(sessions, user.id, mark) == []


async def test_every_console_write_is_audited_with_who_what_when_and_where(
    make_user, console_client, new_case, sessions, seed, twilio, run_jobs
):
    case_id = await new_case(categories=["dropout"], situations=[])
    caseworker = await make_user("caseworker")
    desk = await console_client(caseworker)
    token = form_token((await desk.get(f"/console/cases/{case_id}")).text)
    education = await lookups.referral_id(sessions, case_id, "education")
    records = await seed.hotline_records(case_id, "+8613911112222")

    liaison = await make_user("liaison", "education", "990102")
    desk_l = await console_client(liaison)
    operator = await make_user("operator")
    desk_o = await console_client(operator)
    token_of = {
        caseworker.id: token,
        liaison.id: form_token((await desk_l.get("/console/liaison")).text),
        operator.id: form_token((await desk_o.get("/console/operator")).text),
    }
    case = f"/console/cases/{case_id}"
    referral = f"/console/referrals/{education}"
    steps = [
        (desk, caseworker, f"{case}/events", {"event": "assess"}, [("case.assess", case_id)]),
        (
            desk,
            caseworker,
            f"{case}/assessment",
            {"risk_level": "yellow", "needs": "教育救助"},
            [("case.assess", case_id)],
        ),
        (desk, caseworker, f"{case}/events", {"event": "handle"}, [("case.handle", case_id)]),
        (desk, caseworker, f"{case}/visits", {"findings": "已上门"}, [("case.visit", case_id)]),
        (
            desk,
            caseworker,
            f"{case}/conferences",
            {"departments": ["education", "civil_affairs"], "notes": "会商"},
            [("case.conference", case_id)],
        ),
        (desk_l, liaison, f"{referral}/claim", {}, [("referral.claim", education)]),
        (desk_l, liaison, f"{referral}/progress", {"note": "已联系"},
         [("referral.progress", education)]),
        (desk_l, liaison, f"{referral}/return", {"reason": "非本辖区"},
         [("referral.return", education)]),
        (
            desk,
            caseworker,
            f"{case}/route",
            {"department": "education"},
            [("referral.route", None)],
        ),
        (
            desk_o,
            operator,
            f"/console/sms/{records['thread_id']}/reply",
            {"text": "您好，已收到"},
            [("sms.reply", case_id)],
        ),
    ]
    for console, user, path, form, expected in steps:
        mark = await _last_id(sessions)
        answer = await console.post(path, data={"csrf_token": token_of[user.id], **form})
        assert answer.status_code == 303, answer.text[:400]
        followed = await console.get(answer.headers["location"])
        assert 'class="flash ok"' in followed.text, (path, followed.text[:2000])
        rows = await _rows_since(sessions, user.id, mark)
        writes = [r for r in rows if not r.action.endswith((".read", ".list"))]
        assert [r.action for r in writes] == [a for a, _ in expected], path
        for row, (action, object_id) in zip(writes, expected, strict=True):
            _check(row, user, action, object_id if object_id is not None else row.object_id)
    await run_jobs()  # the reply leaves


async def test_lists_mask_phone_and_id_numbers(
    make_user, console_client, client, pump, seed
):
    id_number = "11010120100101" + str(secrets.randbelow(9000) + 1000)
    mobile = "139" + str(secrets.randbelow(90_000_000) + 10_000_000)
    created = await client.post(
        "/api/v1/reports",
        json=report(
            description=f"孩子父亲{mobile}，身份证{id_number}，经常打孩子",
            reporter={"name": "张老师", "role": "teacher", "phone": "13700001234"},
        ),
    )
    await pump()
    case_id = created.json()["case_id"]
    texter = "+86137" + str(secrets.randbelow(90_000_000) + 10_000_000)
    await seed.sms_thread("邻居孩子没人管", phone=texter)
    masked = [id_number[:6] + "********" + id_number[-4:], mobile[:3] + "****" + mobile[-4:]]
    console = await console_client(await make_user("operator"))
    lists = [
        await console.get("/console/operator"),
        await console.get("/console/operator/incoming", headers=POLL),
        await console.get("/console/search", params={"q": str(case_id)}),
    ]
    for page in lists:
        assert id_number not in page.text and mobile not in page.text, page.url
        assert "13700001234" not in page.text and "137****1234" in page.text, page.url
        for text in masked:
            assert text in page.text, (page.url, text)
    threads = await console.get("/console/sms")
    assert texter[3:] not in threads.text
    assert f"{texter[3:6]}****{texter[-4:]}" in threads.text
    # The case page shows the account as written, to those who may read the case.
    assert id_number in (await console.get(f"/console/cases/{case_id}")).text
