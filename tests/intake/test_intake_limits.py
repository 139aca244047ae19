"""Abuse control on public intake: limits per address and per content, bursts of repeats held
for an operator, a way through for every refused reporter, and Redis down failing open.

The suite runs with these off (tests/conftest.py); each test here swaps in the shipped
defaults (or stricter ones) on the running app, files from an address of its own and with a
text of its own, so the Redis windows of one test never meet another's.
"""

import logging
import re
import socket
from collections.abc import Iterator

import pytest
from sqlalchemy import BigInteger, func, select, update

from db.models import Case, CaseEvent, Outbox, Referral, Report
from tests.fixtures.apps import csrf_token
from tests.fixtures.intake import (
    DEFAULTS,
    NUMBER,
    address,
    body,
    configured,
    refused_with_a_way_through,
    reporter,
    text,
)
from workflows.cases import receipts
from workflows.cases.intake import content_fingerprint

pytest_plugins = ("tests.fixtures.console",)

@pytest.fixture
def limited(app) -> Iterator[None]:
    with configured(app):
        yield


async def police_referrals(sessions, case_ids: set[int]) -> int:
    async with sessions() as session:
        return await session.scalar(
            select(func.count()).select_from(Referral).where(
                Referral.case_id.in_(case_ids), Referral.department_code == "police"
            )
        )


async def test_sixty_danger_reports_from_one_address_page_police_once(app, sessions, pump, limited):
    """The attack as it was tried: one address, 60 'in danger now' reports, the same words
    under another name and with other punctuation each time (so no two are the same
    submission). Before: 60 cases, 60 police referrals, 60 rounds of liaison texts."""
    danger = text()
    async with reporter(app) as script:
        answers = [
            await script.post("/api/v1/reports", json=body(
                danger + "！" * (n % 7) + "。" * (n // 7),
                reporter={"name": f"李老师{n}", "role": "teacher"},
            ))
            for n in range(60)
        ]
    stored = [a.json() for a in answers if a.status_code == 201]
    for refused in (a for a in answers if a.status_code != 201):
        refused_with_a_way_through(refused)
    await pump()

    case_ids = {s["case_id"] for s in stored}
    assert len(case_ids) == 1  # every stored copy on the first one's case
    assert await police_referrals(sessions, case_ids) == 1
    async with sessions() as session:
        reports = (await session.execute(
            # in the order they came: ids order only by their millisecond (0035)
            select(Report.id, Report.held).where(Report.case_id.in_(case_ids))
            .order_by(Report.created_at, Report.id)
        )).all()
    assert sorted(r.id for r in reports) == sorted({s["report_id"] for s in stored})
    assert [r.held for r in reports] == [None, "burst", "burst"]  # 3/minute per content


async def test_a_burst_of_copies_is_stored_joined_held_and_never_routed_again(
    app, sessions, pump, limited
):
    first_text = text("孩子长期一个人在家，无人照料，冰箱里没有吃的")
    # The same words, spaced, punctuated and wide-charactered differently, by two people.
    copy_text = " ".join(first_text.replace("，", ",")) + "！！"
    async with reporter(app) as school, reporter(app) as other:
        first = await school.post("/api/v1/reports", json=body(first_text, in_danger_now=False))
        copy = await other.post("/api/v1/reports", json=body(
            copy_text, in_danger_now=False, reporter={"name": "周老师", "role": "teacher"}
        ))
    assert first.status_code == copy.status_code == 201
    first, copy = first.json(), copy.json()
    assert copy["case_id"] == first["case_id"]
    assert copy["receipt_code"] != first["receipt_code"]  # a report of its own

    async with sessions() as session:
        held = await session.get(Report, copy["report_id"])
        assert held.held == "burst" and held.description == copy_text  # nothing lost
        assert (await session.get(Report, first["report_id"])).held is None
        intake_jobs = (await session.execute(
            select(Outbox.payload["report_id"].as_string().cast(BigInteger)).where(
                Outbox.topic == "case.intake",
                Outbox.payload["case_id"].as_string() == str(first["case_id"]),
            )
        )).scalars().all()
        events = (await session.execute(
            select(CaseEvent.event, CaseEvent.data).where(CaseEvent.case_id == first["case_id"])
            .order_by(CaseEvent.id)
        )).all()
    assert intake_jobs == [first["report_id"]]  # routed once, for the first
    assert ("report_held", {"channel": "webform", "report_id": copy["report_id"],
                            "held": "burst"}) in [(e.event, e.data) for e in events]
    async with reporter(app) as anyone:
        status = await anyone.get(f"/api/v1/receipts/{copy['receipt_code']}")
    assert status.status_code == 200  # the copy's receipt works

    copy_fp = content_fingerprint(copy_text)
    assert copy_fp == content_fingerprint(first_text)
    assert content_fingerprint(first_text.replace("号楼", "号院")) != copy_fp


async def test_operators_see_each_held_copy_in_their_incoming_list(
    app, sessions, limited, make_user, console_client
):
    words = text("学生说继父经常把他锁在门外过夜")
    async with reporter(app) as a, reporter(app) as b:
        first = (await a.post("/api/v1/reports", json=body(words))).json()
        copy = (await b.post("/api/v1/reports", json=body(words + "。"))).json()
    operator = await console_client(await make_user("operator"))
    page = await operator.get("/console/operator/incoming")
    assert page.status_code == 200
    rows = {int(m.group(1)): m.group(0) for m in re.finditer(
        r'<tr[^>]*data-report="(\d+)".*?</tr>', page.text, re.S)}
    assert "重复报告·待核实" in rows[copy["report_id"]]
    assert f"#{first['case_id']}" in rows[copy["report_id"]]
    assert "重复报告·待核实" not in rows[first["report_id"]]


async def test_a_held_copy_saying_danger_raises_the_case_once(app, sessions, pump, limited):
    words = text("孩子父母外出打工，由年迈的奶奶照看，学习跟不上")
    async with reporter(app) as a, reporter(app) as b:
        first = (await a.post("/api/v1/reports",
                              json=body(words, in_danger_now=False, situations=[],
                                        categories=["left_behind"]))).json()
        await pump()
        async with sessions() as session:
            assert not (await session.get(Case, first["case_id"])).emergency  # precondition
        danger = [await b.post("/api/v1/reports", json=body(words, situations=[],
                                                           categories=["left_behind"]))
                  for _ in range(2)]
    assert {d.json()["case_id"] for d in danger} == {first["case_id"]}
    await pump()
    async with sessions() as session:
        assert (await session.get(Case, first["case_id"])).emergency
    assert await police_referrals(sessions, {first["case_id"]}) == 1


async def test_a_repeat_after_the_hold_window_opens_its_own_case(app, sessions, limited):
    words = text("孩子被关在家里好几天没去上学")
    async with reporter(app) as a:
        first = (await a.post("/api/v1/reports", json=body(words))).json()
    async with sessions() as session, session.begin():  # the first report, an hour and more ago
        await session.execute(update(Report).where(Report.id == first["report_id"]).values(
            created_at=Report.created_at - func.make_interval(0, 0, 0, 0, 1, 1)))
    async with reporter(app) as b:
        later = (await b.post("/api/v1/reports", json=body(words))).json()
    assert later["case_id"] != first["case_id"]
    async with sessions() as session:
        assert (await session.get(Report, later["report_id"])).held is None


async def test_one_address_is_limited_generously_and_others_are_not(app, limited):
    ip = address()
    async with reporter(app, ip) as school:
        answers = [await school.post("/api/v1/reports", json=body(text(), in_danger_now=False))
                   for _ in range(12)]
    assert [a.status_code for a in answers] == [201] * 10 + [429] * 2  # 10/minute
    refused_with_a_way_through(answers[-1])
    assert int(answers[-1].headers["retry-after"]) <= 60
    async with reporter(app) as neighbour:
        other = await neighbour.post("/api/v1/reports", json=body(text(), in_danger_now=False))
    assert other.status_code == 201


async def test_one_content_from_many_addresses_is_limited_strictly(app, sessions, limited):
    words = text("有人在桥洞下组织几个小孩乞讨")
    answers = []
    for n in range(5):
        async with reporter(app) as someone:
            answers.append(await someone.post(
                "/api/v1/reports", json=body(words + "!" * n, in_danger_now=False)))
    assert [a.status_code for a in answers] == [201] * 3 + [429] * 2  # 3/minute
    refused_with_a_way_through(answers[-1])
    assert len({a.json()["case_id"] for a in answers[:3]}) == 1


def _form(description: str) -> dict:
    return {
        "reporter_name": "张医生", "reporter_role": "doctor", "reporter_phone": "13900139000",
        "situations": ["4"], "jurisdiction": "990103001001", "description": description,
        "in_danger_now": "yes",
    }


async def test_the_form_over_the_limit_answers_a_page_with_the_hotline_number(app):
    with configured(app, hotline_intake_limits_per_address="1/hour"):
        async with reporter(app) as browser:
            page = await browser.get("/report")
            first_text, second_text = text(), text("第二个孩子也被打了")
            first = await browser.post(
                "/report", data={**_form(first_text), "csrf_token": csrf_token(page.text)})
            assert first.status_code == 201
            page = await browser.get("/report")
            second = await browser.post(
                "/report", data={**_form(second_text), "csrf_token": csrf_token(page.text)})
    assert second.status_code == 429
    assert second.headers["content-type"].startswith("text/html")
    assert 0 < int(second.headers["retry-after"]) <= 3600
    html = second.text
    assert 'lang="zh-CN"' in html and "110" in html
    assert f'href="tel:{NUMBER}"' in html
    assert second_text in html  # the reporter's text is shown back, not lost


async def test_the_form_tells_the_reporter_of_a_held_copy(app, limited):
    words = text("孩子说晚上不敢回家，继母会打她")
    async with reporter(app) as browser:
        answers = []
        for name in ("张医生", "王医生"):  # two people: not one double click
            page = await browser.get("/report")
            answers.append(await browser.post("/report", data={
                **_form(words), "reporter_name": name, "csrf_token": csrf_token(page.text)}))
    assert [a.status_code for a in answers] == [201, 201]
    assert 'id="held-note"' not in answers[0].text
    assert 'id="held-note"' in answers[1].text
    codes = [re.search(r'id="receipt-code">([^<]+)<', a.text).group(1) for a in answers]
    assert receipts.normalize(codes[0]) and receipts.normalize(codes[1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_with_redis_down_reports_get_through_held_and_logged(
    settings, database_url, sessions, caplog
):
    from dispatch.app import create_app

    strict = settings.model_copy(update={
        **DEFAULTS,
        "hotline_intake_limits_per_address": "1/hour",
        "hotline_intake_limits_per_content": "1/hour",
    })
    app = create_app(strict, database_url=database_url,
                     redis_url=f"redis://127.0.0.1:{_free_port()}/0")
    ip, words = address(), text()
    caplog.set_level(logging.WARNING, logger="hotline.ratelimit")
    async with app.router.lifespan_context(app), reporter(app, ip) as script:
        answers = [await script.post("/api/v1/reports", json=body(words + "!" * n))
                   for n in range(3)]
    assert [a.status_code for a in answers] == [201] * 3  # fail open: every report stored
    # ...and the hold lives in PostgreSQL: one case, the copies held.
    assert len({a.json()["case_id"] for a in answers}) == 1
    async with sessions() as session:
        held = (await session.execute(select(Report.held).where(
            Report.id.in_([a.json()["report_id"] for a in answers]))
            .order_by(Report.created_at, Report.id)  # as they came (ids: by millisecond)
        )).scalars().all()
    assert held == [None, "burst", "burst"]
    lines = [r.getMessage() for r in caplog.records if r.name == "hotline.ratelimit"]
    assert lines and all("redis unavailable" in line for line in lines)
    assert not any(ip in line or words[:6] in line for line in lines)  # no personal data
