"""The judgement of each text, through every channel, end to end: danger in the text makes
an emergency that police get at once, a mandatory reporter's account of a situation is a
mandatory report without a ticked box, a non-case waits for an operator with its reason,
and the place a text names routes it. Plus the pure rules that join a judgement with what
people said, and the operators' list, most urgent first."""

import asyncio
import re
import secrets

from sqlalchemy import select

from db.crypto import phone_index
from db.models import Case, Referral, Report
from tests.fixtures.partners import order
from tests.fixtures.reports import report
from tests.fixtures.texts import BELT_THREAT, CONSULTATION, PREGNANT_GIRL
from tests.fixtures.twilio_fake import mobile, signed
from workflows.triage import Judgement
from workflows.triage.policy import auto_registers, decide, rejudge

pytest_plugins = ("tests.fixtures.partners", "tests.fixtures.twilio", "tests.fixtures.console")

BEATING_NOW = (
    "市民来电反映：幸福里小区邻居家男人正在打孩子，孩子一直在哭喊，已经持续了十几分钟。"
    "诉求：请尽快派人处理。"
)


def _tag() -> str:
    return f"（编号{secrets.token_hex(3)}）"


async def _case(sessions, case_id: int) -> Case:
    async with sessions() as session:
        return await session.get(Case, case_id)


async def _referrals(sessions, case_id: int) -> list[Referral]:
    async with sessions() as session:
        rows = await session.execute(
            select(Referral).where(Referral.case_id == case_id).order_by(Referral.id)
        )
        return list(rows.scalars())


async def _report(sessions, case_id: int) -> Report:
    async with sessions() as session:
        rows = await session.execute(
            select(Report).where(Report.case_id == case_id).order_by(Report.id).limit(1)
        )
        return rows.scalar_one()


async def test_a_12345_order_without_urgency_whose_text_says_a_beating_is_happening_goes_to_police(
    post_forward, sessions, pump
):
    answer = await post_forward("12345", order(content=BEATING_NOW + _tag(), urgency="一般"))
    assert answer.status_code == 202, answer.text
    case_id = answer.json()["case_id"]
    await pump()
    case = await _case(sessions, case_id)
    assert case.emergency is True and case.predicted_risk == "red"
    assert "domestic_violence" in case.categories
    police = [r for r in await _referrals(sessions, case_id) if r.department_code == "police"]
    assert len(police) == 1 and police[0].status == "queued"
    stored = await _report(sessions, case_id)
    # What the partner said is kept as it said it; the judgement, with its evidence, beside.
    assert stored.in_danger_now is False
    assert stored.judgement["emergency"] is True
    assert "正在打" in " ".join(stored.judgement["evidence"]["emergency"])
    assert stored.judgement["version"]


async def test_a_web_form_with_the_box_unticked_but_danger_in_its_text_is_an_emergency(
    client, sessions, pump, make_user, login
):
    body = report(
        description=BELT_THREAT + _tag(), situations=[], categories=[], in_danger_now=False
    )
    created = await client.post("/api/v1/reports", json=body)
    assert created.status_code == 201, created.text
    case_id = created.json()["case_id"]
    await pump()
    operator = await login(await make_user("operator"))
    case = (await client.get(f"/api/v1/cases/{case_id}", headers=operator)).json()
    assert case["emergency"] is True and case["state"] == "reported"
    assert "police" in [r["department"] for r in case["referrals"]]
    assert case["reports"][0]["in_danger_now"] is False  # the reporter's own answer, kept
    assert case["reports"][0]["judgement"]["emergency"] is True
    assert case["predicted_risk"] == "red" and case["not_a_case"] is None


async def test_a_mandatory_reporters_account_of_situation_2_is_mandatory_with_no_box_ticked(
    client, sessions, pump, twilio, run_jobs
):
    body = report(
        description=PREGNANT_GIRL + _tag(),
        situations=[],
        categories=[],
        child={"age": 12, "gender": "female"},
    )
    case_id = (await client.post("/api/v1/reports", json=body)).json()["case_id"]
    await pump()
    case = await _case(sessions, case_id)
    assert case.mandatory is True and case.emergency is False
    assert case.categories[0] == "sexual_abuse"
    police = [r for r in await _referrals(sessions, case_id) if r.department_code == "police"]
    assert len(police) == 1
    stored = await _report(sessions, case_id)
    assert stored.situations == []  # nobody ticked it
    assert stored.judgement["situations"] == [2]

    # The same words from the public by SMS are no mandatory report (not a mandatory
    # reporter), though still judged the same way.
    sender = mobile()
    await signed(client, "/channels/twilio/sms", _sms(sender, PREGNANT_GIRL + _tag()))
    await run_jobs()
    async with sessions() as session:
        texted = (
            await session.execute(select(Report).where(Report.phone_index == phone_index(sender)))
        ).scalar_one()
        sms_case = await session.get(Case, texted.case_id)
    assert sms_case.mandatory is False and "sexual_abuse" in sms_case.categories


def _sms(sender: str, body: str) -> dict[str, str]:
    from tests.fixtures.twilio_fake import sms

    return sms(sender, body)


async def test_a_consultation_sms_is_not_dispatched_and_waits_with_its_reason(
    client, sessions, twilio, run_jobs, make_user, console_client
):
    sender = mobile()
    await signed(client, "/channels/twilio/sms", _sms(sender, CONSULTATION))
    await run_jobs()
    async with sessions() as session:
        texted = (
            await session.execute(select(Report).where(Report.phone_index == phone_index(sender)))
        ).scalar_one()
    case = await _case(sessions, texted.case_id)
    assert case.not_a_case == "consultation" and case.state == "discovered"
    assert await _referrals(sessions, case.id) == []
    operator = await console_client(await make_user("operator"))
    page = await operator.get("/console/operator")
    row = _row(page.text, case.id)
    assert "疑似咨询" in row and "非案件" in row  # the reason and its evidence
    case_page = await operator.get(f"/console/cases/{case.id}")
    assert "疑似咨询" in case_page.text and 'id="not-a-case"' in case_page.text
    # Proposed for 不予受理 (退回 for a partner's order) with that reason, for the operator.
    assert ">疑似咨询</textarea>" in case_page.text


async def test_a_consultation_through_the_web_form_is_not_registered(client, sessions, pump):
    body = report(description=CONSULTATION + _tag(), situations=[], categories=[])
    case_id = (await client.post("/api/v1/reports", json=body)).json()["case_id"]
    await pump()
    case = await _case(sessions, case_id)
    assert case.state == "discovered" and case.not_a_case == "consultation"
    assert await _referrals(sessions, case_id) == []


async def test_an_sms_thread_is_judged_as_a_whole_and_its_place_routes_it(
    client, sessions, twilio, run_jobs
):
    sender = mobile()
    await signed(client, "/channels/twilio/sms", _sms(sender, "有个孩子天天没人管"))
    async with sessions() as session:
        first = (
            await session.execute(select(Report).where(Report.phone_index == phone_index(sender)))
        ).scalar_one()
    case = await _case(sessions, first.case_id)
    assert case.jurisdiction_code is None  # no place named yet
    await signed(client, "/channels/twilio/sms", _sms(sender, "就在湖滨村，他还在路边乞讨"))
    await run_jobs()
    case = await _case(sessions, first.case_id)
    assert case.jurisdiction_code == "990103001001"
    assert {"guardianship_absent", "street_begging"} <= set(case.categories)
    again = await _report(sessions, case.id)
    assert "street_begging" in again.judgement["categories"]  # the thread's judgement


async def test_the_incoming_list_puts_emergencies_first_then_predicted_risk_then_the_oldest(
    client, pump, make_user, console_client
):
    place = "990104001001"  # a village no other test reports from
    operator = await console_client(await make_user("operator", jurisdiction=place))

    async def file(text: str) -> int:
        body = report(
            description=text + _tag(), situations=[], categories=[], jurisdiction=place
        )
        return (await client.post("/api/v1/reports", json=body)).json()["case_id"]

    calm_old = await file("孩子父母外出打工，由奶奶照看")
    orange = await file(PREGNANT_GIRL)
    calm_new = await file("学生家庭贫困，冬天没有厚衣服")
    danger = await file(BELT_THREAT)
    await pump()
    page = await operator.get("/console/operator")
    assert page.status_code == 200
    shown = [c for c in _case_ids(page.text) if c in {calm_old, orange, calm_new, danger}]
    assert shown == [danger, orange, calm_old, calm_new]
    assert "危险：" in _row(page.text, danger)  # the evidence is on the row

    # The refresh answers the same order, and nothing when nothing changed.
    fragment = await operator.get("/console/operator/incoming", headers={"X-Console-Poll": "1"})
    again = [c for c in _case_ids(fragment.text) if c in {calm_old, orange, calm_new, danger}]
    assert again == shown
    version = fragment.headers["X-List-Version"]
    unchanged = await operator.get(
        "/console/operator/incoming", params={"v": version}, headers={"X-Console-Poll": "1"}
    )
    assert unchanged.status_code == 204
    seen = max(map(int, re.findall(r'data-report="(\d+)"', fragment.text)))
    newer = await file("孩子独自在家无人照顾")
    changed = await operator.get(
        "/console/operator/incoming",
        params={"v": version, "after": seen},  # a report id: the newest the page shows
        headers={"X-Console-Poll": "1"},
    )
    assert changed.status_code == 200 and f"/console/cases/{newer}" in changed.text
    assert re.search(r'class="new[ "]', changed.text)  # marked new (an emergency too, maybe)


async def test_a_report_still_waiting_stays_on_the_list_however_many_arrive_after_it(
    client, pump, make_user, console_client
):
    place = "990104001"  # 青石镇 itself: no other test reports there
    operator = await console_client(await make_user("operator", jurisdiction=place))

    async def file(text: str) -> int:
        # Report ids order by their millisecond (0035): one apart, each is newer than the last.
        await asyncio.sleep(0.002)
        body = report(description=text + _tag(), situations=[], categories=[], jurisdiction=place)
        return (await client.post("/api/v1/reports", json=body)).json()["case_id"]

    waiting = await file(CONSULTATION)
    later = [await file("孩子父母外出打工，由奶奶照看") for _ in range(31)]
    await pump()  # the later ones are registered; the consultation still waits
    shown = _case_ids((await operator.get("/console/operator")).text)
    assert waiting in shown and later[-1] in shown and later[0] not in shown


def _case_ids(html: str) -> list[int]:
    import re

    return [int(m) for m in re.findall(r'<a href="/console/cases/(\d+)">#', html)]


def _row(html: str, case_id: int) -> str:
    start = html.index(f'<a href="/console/cases/{case_id}">#')
    return html[html.rindex("<tr", 0, start) : html.index("</tr>", start)]


async def test_notes_typed_during_a_call_are_judged_like_every_other_text(
    client, sessions, pump, seed, make_user, login
):
    call_sid = await seed.waiting_call()
    operator = await login(await make_user("operator"))
    body = {"description": "来电称" + BELT_THREAT + _tag(), "in_danger_now": False}
    answer = await client.post(
        f"/api/v1/voice/calls/{call_sid}/report", json=body, headers=operator
    )
    assert answer.status_code == 201, answer.text
    case_id = answer.json()["case_id"]
    await pump()
    case = await _case(sessions, case_id)
    assert case.emergency is True and case.state == "discovered"
    assert [r.department_code for r in await _referrals(sessions, case_id)] == ["police"]


async def test_a_forward_with_no_code_or_address_is_placed_where_its_text_says(
    post_forward, sessions, pump
):
    body = order(content="群众反映湖滨村一名男孩长期无人照顾，经常饿肚子。" + _tag())
    body.pop("address")
    answer = await post_forward("12345", body)
    case = await _case(sessions, answer.json()["case_id"])
    assert case.jurisdiction_code == "990103001001"  # not the city
    await pump()
    civil = [r for r in await _referrals(sessions, case.id) if r.department_code == "civil_affairs"]
    assert civil and civil[0].jurisdiction_code == "990103"


# ---- the rules, on their own -----------------------------------------------------------


def _judged(**changes) -> Judgement:
    base = {
        "categories": ["poverty"],
        "scores": {"poverty": 0.9},
        "emergency": False,
        "situations": [],
        "jurisdiction": "990102001",
        "not_a_case": None,
        "risk": "yellow",
        "evidence": {},
    }
    return Judgement(**{**base, **changes})


def _decide(judgement: Judgement, **said):
    given = {
        "channel": "webform",
        "categories": [],
        "situations": [],
        "emergency": False,
        "jurisdiction": None,
    }
    return decide(judgement, **{**given, **said})


def test_a_judgement_raises_what_people_said_and_never_lowers_it():
    # The reporter's category is kept and first; the text's is added.
    assert _decide(_judged(), categories=["dropout"]).categories == ["dropout", "poverty"]
    # A box ticked stays an emergency whatever the text says.
    assert _decide(_judged(), emergency=True).emergency is True
    assert _decide(_judged(emergency=True)).emergency is True
    # The reporter's or partner's jurisdiction is kept; the text's only fills a gap.
    assert _decide(_judged(), jurisdiction="990103").jurisdiction == "990103"
    assert _decide(_judged()).jurisdiction == "990102001"
    # Mandatory: ticked situations anywhere; the text's only for mandatory reporters.
    assert _decide(_judged(), channel="sms", situations=[4]).mandatory is True
    assert _decide(_judged(situations=[2])).mandatory is True
    assert _decide(_judged(situations=[2]), channel="12345").mandatory is False
    # "other" only when nothing else is known.
    assert _decide(_judged(categories=["other"]), categories=["other"]).categories == ["other"]


def test_an_emergency_is_never_a_non_case_and_a_person_who_chose_a_category_said_it_is_one():
    question = _judged(not_a_case="consultation", risk="blue")
    assert _decide(question).not_a_case == "consultation"
    assert _decide(question, emergency=True).not_a_case is None
    assert _decide(_judged(not_a_case="noise", emergency=True)).not_a_case is None
    assert _decide(question, categories=["poverty"]).not_a_case is None
    assert _decide(question, situations=[6]).not_a_case is None
    assert _decide(question).predicted_risk == "blue"
    assert _decide(question, emergency=True).predicted_risk == "red"


def test_only_complete_cases_from_complete_channels_are_registered_without_an_operator():
    assert auto_registers("webform", partner_review=False, not_a_case=None) is True
    assert auto_registers("12345", partner_review=True, not_a_case=None) is False
    assert auto_registers("12345", partner_review=False, not_a_case="not_minor") is False
    assert auto_registers("sms", partner_review=False, not_a_case=None) is False


def test_a_thread_judged_again_adds_and_never_takes_away():
    before = {
        "categories": ["left_behind"],
        "jurisdiction": "990103",
        "not_a_case": None,
        "predicted_risk": "orange",
        "emergency": False,
    }
    after = rejudge(_judged(not_a_case="consultation", risk="blue"), **before)
    assert after.categories == ["left_behind", "poverty"]
    assert after.jurisdiction == "990103"  # already known: kept
    assert after.not_a_case is None  # a case stays a case
    assert after.predicted_risk == "orange"  # never lowered
    waiting = rejudge(_judged(), **{**before, "not_a_case": "consultation"})
    assert waiting.not_a_case is None  # the thread now reads as a case
    danger = rejudge(_judged(emergency=True), **{**before, "not_a_case": "consultation"})
    assert danger.emergency and danger.not_a_case is None and danger.predicted_risk == "red"
