"""The child file: a record opened at intake, proposed for the next report about the same
child, linked and unlinked (audited), merged; case merges carrying children and SMS threads;
one timeline; the export; masking and scope; the incoming list's very-likely mark."""

import io
import secrets

from openpyxl import load_workbook
from sqlalchemy import func, select

from db.models import AuditLog, Case, Referral
from db.models_children import CaseChild, Child
from db.telephony import SmsThread
from tests.fixtures.children import a_name, a_place
from tests.fixtures.console import form_token
from tests.fixtures.reports import report
from tests.fixtures.twilio_fake import mobile

pytest_plugins = ("tests.fixtures.console",)


async def _report(client, name: str, place: str, *, age: int | None = None, **changes) -> int:
    # A random age too: another test's namesake of another age is not proposed instead.
    age = secrets.randbelow(13) + 3 if age is None else age
    body = report(child={"name": name, "age": age, "gender": "female",
                         "address": f"{place}小区6栋"},
                  reporter={"name": "吴老师", "role": "teacher", "phone": mobile()}, **changes)
    created = await client.post("/api/v1/reports", json=body)
    assert created.status_code in (200, 201, 202), created.text
    return created.json()["case_id"]


async def _children_of(client, case_id: int, headers) -> dict:
    response = await client.get(f"/api/v1/cases/{case_id}/children", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_intake_opens_a_file_and_the_next_report_is_proposed_and_linked(
    client, make_user, login, pump, sessions
):
    caseworker = await login(await make_user("caseworker"))
    name, sound_alike = a_name()
    place = a_place()
    first = await _report(client, name, place, age=10)
    await pump()
    opened = await _children_of(client, first, caseworker)
    assert len(opened["items"]) == 1 and opened["items"][0]["name"] == name
    child_id = opened["items"][0]["child_id"]

    second = await _report(client, sound_alike, place, age=10,
                           description="孩子说妈妈的男朋友打她")
    await pump()
    proposed = await _children_of(client, second, caseworker)
    assert proposed["items"] == []  # not opened twice: proposed instead
    assert proposed["candidates"][0]["child_id"] == child_id
    assert "姓名同音" in proposed["candidates"][0]["reasons"]
    linked = await client.post(f"/api/v1/cases/{second}/children",
                               json={"child_id": child_id, "reason": "同一儿童"},
                               headers=caseworker)
    assert linked.status_code == 201 and linked.json()["created"] is False
    again = await client.post(f"/api/v1/cases/{second}/children", json={"child_id": child_id},
                              headers=caseworker)
    assert again.status_code == 409 and again.json()["error"]["message"]

    file = (await client.get(f"/api/v1/children/{child_id}", headers=caseworker)).json()
    assert {c["case_id"] for c in file["cases"]} == {first, second}
    assert file["name_pinyin"]
    timeline = (await client.get(f"/api/v1/children/{child_id}/timeline",
                                 headers=caseworker)).json()["items"]
    assert [i["at"] for i in timeline] == sorted((i["at"] for i in timeline), reverse=True)
    assert {i["case_id"] for i in timeline if i["kind"] == "report"} == {first, second}
    assert {"created", "linked"} <= {i["event"] for i in timeline if i["kind"] == "child"}

    refused = await client.post(f"/api/v1/cases/{second}/children/{child_id}/unlink",
                                json={}, headers=caseworker)
    assert refused.status_code == 422
    unlinked = await client.post(f"/api/v1/cases/{second}/children/{child_id}/unlink",
                                 json={"reason": "关联错了"}, headers=caseworker)
    assert unlinked.status_code == 200
    async with sessions() as session:
        assert await session.scalar(select(func.count()).where(
            CaseChild.child_id == child_id)) == 1
        actions = set((await session.execute(select(AuditLog.action).where(
            AuditLog.object_id == str(second)))).scalars())
    assert {"case.link_child", "case.unlink_child"} <= actions


async def test_merging_cases_carries_children_and_sms_threads(
    client, make_user, login, pump, sessions, seed
):
    caseworker = await login(await make_user("caseworker"))
    name, _ = a_name()
    kept = await _report(client, name, a_place())
    await pump()
    _, sms_case = await seed.sms_thread(f"{a_place()}有个孩子没人管 {secrets.token_hex(3)}",
                                        phone=mobile())
    created = await client.post(f"/api/v1/cases/{sms_case}/children", json={},
                                headers=caseworker)
    assert created.status_code == 201, created.text
    sms_child = created.json()["child_id"]
    merged = await client.post(f"/api/v1/cases/{sms_case}/events", json={
        "event": "merge", "into_case_id": kept, "reason": "同一儿童"}, headers=caseworker)
    assert merged.status_code == 200, merged.text
    async with sessions() as session:
        threads = list((await session.execute(select(SmsThread.case_id).where(
            SmsThread.report_id.in_(select_reports(sms_case))))).scalars())
        assert threads and set(threads) == {kept}
        linked = set((await session.execute(select(CaseChild.child_id).where(
            CaseChild.case_id == kept))).scalars())
    assert sms_child in linked
    file = (await client.get(f"/api/v1/children/{sms_child}", headers=caseworker)).json()
    assert {c["case_id"] for c in file["cases"]} == {sms_case, kept}


def select_reports(case_id: int):
    from db.models import Report

    return select(Report.id).where(Report.case_id == case_id)


async def test_merging_two_files_of_one_child_keeps_both_timelines(
    client, make_user, login, pump
):
    caseworker = await login(await make_user("caseworker"))
    one = await _report(client, *a_name()[:1], a_place())
    other = await _report(client, *a_name()[:1], a_place())
    await pump()
    a = (await _children_of(client, one, caseworker))["items"][0]["child_id"]
    b = (await _children_of(client, other, caseworker))["items"][0]["child_id"]
    merged = await client.post(f"/api/v1/children/{b}/merge",
                               json={"into_child_id": a, "reason": "同一儿童两份档案"},
                               headers=caseworker)
    assert merged.status_code == 200, merged.text
    assert {c["case_id"] for c in merged.json()["cases"]} == {one, other}
    old = (await client.get(f"/api/v1/children/{b}", headers=caseworker)).json()
    assert old["merged_into_id"] == a
    timeline = (await client.get(f"/api/v1/children/{a}/timeline",
                                 headers=caseworker)).json()["items"]
    assert {i["case_id"] for i in timeline if i["kind"] == "report"} == {one, other}
    self_merge = await client.post(f"/api/v1/children/{a}/merge",
                                   json={"into_child_id": a, "reason": "x"}, headers=caseworker)
    assert self_merge.status_code == 422


async def test_id_numbers_and_phones_are_masked_and_reveal_is_audited_and_export_works(
    client, make_user, login, pump, sessions
):
    caseworker_user = await make_user("caseworker")
    caseworker = await login(caseworker_user)
    case_id = await _report(client, a_name()[0], a_place())
    await pump()
    child_id = (await _children_of(client, case_id, caseworker))["items"][0]["child_id"]
    edited = await client.patch(f"/api/v1/children/{child_id}", json={
        "id_number": "11010120150101123x", "school": "东湖第一小学", "reason": "核实身份"},
        headers=caseworker)
    assert edited.status_code == 200, edited.text
    assert edited.json()["id_number"] != "11010120150101123X"
    assert edited.json()["id_number"].startswith("110101") and "*" in edited.json()["id_number"]
    added = await client.post(f"/api/v1/children/{child_id}/guardians", json={
        "relation": "母亲", "name": "赵女士", "phone": "13912345678", "state": "away"},
        headers=caseworker)
    assert added.status_code == 201
    assert added.json()["guardians"][0]["phone"] == "139****5678"
    assert added.json()["guardians"][0]["state_label"] == "外出务工"
    listed = (await client.get(f"/api/v1/children/{child_id}", headers=caseworker)).json()
    assert listed["guardians"][0]["phone"] == "139****5678"
    full = (await client.get(f"/api/v1/children/{child_id}?reveal=true",
                             headers=caseworker)).json()
    assert full["guardians"][0]["phone"] == "+8613912345678"
    assert full["id_number"] == "11010120150101123X"
    bad = await client.patch(f"/api/v1/children/{child_id}", json={
        "categories": ["nope"], "reason": "x"}, headers=caseworker)
    assert bad.status_code == 422 and "可选" in bad.json()["error"]["message"]
    # Clearing a field is null (or an empty text); never a database error.
    for cleared in ({"categories": None}, {"jurisdiction": ""}, {"jurisdiction": None},
                    {"name": None}, {"gender": None}, {"id_number": None}):
        answer = await client.patch(f"/api/v1/children/{child_id}",
                                    json={**cleared, "reason": "更正"}, headers=caseworker)
        assert answer.status_code in (200, 422), (cleared, answer.text)
    assert full["id_number"] == "11010120150101123X"  # read before the clearing

    # What was typed reaches the workbook as text: a formula is not run, a control
    # character does not break the file.
    typed = '=HYPERLINK("http://example.invalid","点击")'
    await client.patch(f"/api/v1/children/{child_id}", headers=caseworker,
                       json={"hukou": typed, "school_class": "三\x07班", "reason": "核实"})
    exported = await client.get(f"/api/v1/children/{child_id}/export", headers=caseworker)
    assert exported.status_code == 200
    book = load_workbook(io.BytesIO(exported.content))
    cells = {c.value: c.data_type for row in book["基本信息"].iter_rows() for c in row}
    assert cells[typed] == "s" and "三班" in cells
    assert book.sheetnames == ["基本信息", "监护人", "案件", "时间线"]
    values = [c.value for row in book["基本信息"].iter_rows() for c in row]
    assert "东湖第一小学" in values and "11010120150101123X" not in values
    assert book["案件"]["A2"].value == case_id
    async with sessions() as session:
        actions = set((await session.execute(select(AuditLog.action).where(
            AuditLog.object_type == "child", AuditLog.object_id == str(child_id)))).scalars())
    assert {"child.edit", "child.reveal", "child.export", "child.read"} <= actions


async def test_departments_see_only_their_referrals_children(
    client, make_user, login, pump, sessions
):
    case_id = await _report(client, a_name()[0], a_place())
    await pump()
    caseworker = await login(await make_user("caseworker"))
    child_id = (await _children_of(client, case_id, caseworker))["items"][0]["child_id"]
    async with sessions() as session:
        office = (await session.execute(select(Referral.jurisdiction_code).where(
            Referral.case_id == case_id, Referral.department_code == "police"))).scalar()
    police = await login(await make_user("liaison", "police", office))
    seen = await client.get(f"/api/v1/children/{child_id}", headers=police)
    assert seen.status_code == 200
    assert "*" in (seen.json()["id_number"] or "*")
    assert (await client.get(f"/api/v1/children/{child_id}?reveal=true",
                             headers=police)).json()["id_number"] == seen.json()["id_number"]
    assert (await client.patch(f"/api/v1/children/{child_id}", json={"reason": "x"},
                               headers=police)).status_code == 403
    assert (await client.get(f"/api/v1/cases/{case_id}/children",
                             headers=police)).status_code == 403
    housing = await login(await make_user("liaison", "housing", "990100"))
    assert (await client.get(f"/api/v1/children/{child_id}", headers=housing)).status_code == 404
    elsewhere = await login(await make_user("caseworker", jurisdiction="990104"))
    assert (await client.get(f"/api/v1/children/{child_id}",
                             headers=elsewhere)).status_code == 404


async def test_a_very_likely_duplicate_is_flagged_on_the_incoming_list(
    client, make_user, console_client, pump, sessions
):
    name, sound_alike = a_name()
    place = a_place()
    phone = mobile()
    first = await client.post("/api/v1/reports", json=report(
        child={"name": name, "age": 12, "gender": "male", "address": f"{place}小区2栋"},
        reporter={"name": "郑老师", "role": "teacher", "phone": phone}, situations=[],
        categories=["bullying"], description="学生被同学勒索"))
    second = await client.post("/api/v1/reports", json=report(
        child={"name": sound_alike, "age": 12, "gender": "male", "address": f"{place}2号楼"},
        reporter={"name": "郑老师", "role": "teacher", "phone": phone}, situations=[],
        categories=["bullying"], description="学生又被同学勒索"))
    await pump()
    async with sessions() as session:
        case = await session.get(Case, second.json()["case_id"])
    assert case.likely_duplicate_of == first.json()["case_id"]
    operator = await console_client(await make_user("operator"))
    page = await operator.get("/console/operator")
    assert f"很可能与 #{first.json()['case_id']} 重复" in page.text


async def test_the_pages_show_the_file_and_link_from_the_case(
    client, make_user, console_client, pump, sessions
):
    case_id = await _report(client, a_name()[0], a_place())
    await pump()
    worker = await console_client(await make_user("caseworker"))
    case_page = await worker.get(f"/console/cases/{case_id}")
    assert "儿童档案" in case_page.text
    async with sessions() as session:
        child_id = await session.scalar(select(CaseChild.child_id).where(
            CaseChild.case_id == case_id))
        assert await session.get(Child, child_id)
    page = await worker.get(f"/console/children/{child_id}")
    assert page.status_code == 200 and "时间线" in page.text and f"#{case_id}" in page.text
    unlink = await worker.post(f"/console/cases/{case_id}/children/{child_id}/unlink",
                               data={"csrf_token": form_token(page.text), "reason": "错了"})
    assert unlink.status_code == 303
    relink = await worker.post(f"/console/cases/{case_id}/children",
                               data={"csrf_token": form_token(page.text),
                                     "child_id": str(child_id)})
    assert relink.status_code == 303
    async with sessions() as session:
        assert await session.scalar(select(CaseChild.child_id).where(
            CaseChild.case_id == case_id)) == child_id


async def test_siblings_are_recorded_on_both_files_and_taken_back_with_a_reason(
    client, make_user, login, pump, console_client
):
    caseworker_user = await make_user("caseworker")
    caseworker = await login(caseworker_user)
    place = a_place()
    ids = []
    for _ in range(2):
        case_id = await _report(client, a_name()[0], place)
        await pump()
        ids.append((await _children_of(client, case_id, caseworker))["items"][0]["child_id"])
    elder, younger = ids
    base = f"/api/v1/children/{elder}/siblings"

    linked = await client.post(base, json={"sibling_id": younger, "reason": "同一户口本"},
                               headers=caseworker)
    assert linked.status_code == 201, linked.text
    assert [s["id"] for s in linked.json()["siblings"]] == [younger]
    other_side = await client.get(f"/api/v1/children/{younger}", headers=caseworker)
    assert [s["id"] for s in other_side.json()["siblings"]] == [elder]
    again = await client.post(base, json={"sibling_id": younger, "reason": "再次登记"},
                              headers=caseworker)
    assert again.status_code == 201 and len(again.json()["siblings"]) == 1
    for child_id in ids:
        events = (await client.get(f"/api/v1/children/{child_id}/timeline",
                                   headers=caseworker)).json()["items"]
        assert [e["event"] for e in events].count("sibling_linked") == 1  # not twice

    itself = await client.post(base, json={"sibling_id": elder, "reason": "x"},
                               headers=caseworker)
    assert itself.status_code == 422 and itself.json()["error"]["code"] == "same_child"
    elsewhere = await login(await make_user("caseworker", jurisdiction="990104"))
    assert (await client.post(f"/api/v1/children/{younger}/siblings", headers=elsewhere,
                              json={"sibling_id": elder, "reason": "x"})).status_code == 404
    police = await login(await make_user("liaison", "police", "990102001"))
    assert (await client.post(base, headers=police, json={"sibling_id": younger,
                                                          "reason": "x"})).status_code == 403

    # The console: the file page lists the sibling and takes the link back with a reason.
    console = await console_client(caseworker_user)
    page = await console.get(f"/console/children/{elder}")
    assert f'href="/console/children/{younger}"' in page.text.split('id="siblings"')[1]
    unlinked = await console.post(
        f"/console/children/{elder}/siblings/{younger}/unlink",
        data={"csrf_token": form_token(page.text), "reason": "登记错误，不是兄弟姐妹"})
    assert unlinked.status_code == 303
    after = await console.get(f"/console/children/{elder}")
    assert "未登记兄弟姐妹" in after.text and "已取消兄弟姐妹登记" in after.text
    gone = await client.post(f"/api/v1/children/{younger}/siblings/{elder}/unlink",
                             json={"reason": "x"}, headers=caseworker)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "sibling_not_found"


async def test_every_rebuild_of_a_files_keys_keeps_its_guardians_phones(
    client, make_user, login, pump, sessions, monkeypatch, database_url
):
    """A guardian added, the file edited, another file merged in, `hotline children keys`:
    each rebuilds the keys with every guardian's phone (service.rekey_children)."""
    import asyncio

    from typer.testing import CliRunner

    from db.crypto import phone_index
    from dispatch.children.matching_service import child_keys
    from dispatch.ops.cli import app as cli
    from workflows.matching.keys import sealed

    caseworker = await login(await make_user("caseworker"))
    one = await _report(client, a_name()[0], a_place())
    other = await _report(client, a_name()[0], a_place())
    await pump()
    a = (await _children_of(client, one, caseworker))["items"][0]["child_id"]
    b = (await _children_of(client, other, caseworker))["items"][0]["child_id"]
    mother, father = mobile(), mobile()

    async def phone_keys(child_id: int) -> set[str]:
        async with sessions() as session:
            child = await session.get(Child, child_id)
        return {k for k in child.match_keys if k.startswith("p:")}

    def key(phone: str) -> str:
        return sealed(["p:" + phone_index(phone)])[0]

    for child_id, phone in ((a, mother), (b, father)):
        added = await client.post(f"/api/v1/children/{child_id}/guardians", json={
            "relation": "监护人", "phone": phone}, headers=caseworker)
        assert added.status_code == 201, added.text
        assert await phone_keys(child_id) == {key(phone)}
    edited = await client.patch(f"/api/v1/children/{a}", json={
        "school": "东湖第一小学", "reason": "核实"}, headers=caseworker)
    assert edited.status_code == 200, edited.text
    assert await phone_keys(a) == {key(mother)}
    merged = await client.post(f"/api/v1/children/{b}/merge",
                               json={"into_child_id": a, "reason": "同一儿童"}, headers=caseworker)
    assert merged.status_code == 200, merged.text
    assert await phone_keys(a) == {key(mother), key(father)}

    async with sessions() as session:
        before = (await session.get(Child, a)).match_keys
    monkeypatch.setattr("dispatch.ops.cli._database_url", lambda: database_url)
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["children", "keys"])
    assert result.exit_code == 0, result.output
    async with sessions() as session:
        child = await session.get(Child, a)
        assert child.match_keys == before
        assert child.match_keys == child_keys(child, [phone_index(mother), phone_index(father)])


async def test_a_report_from_a_guardians_phone_about_a_pet_name_proposes_the_child(
    client, make_user, login, pump, sessions
):
    """Issue 12: a child on file was found by its guardian's phone key, but scored without
    its guardians' phones, so a report from the mother's number naming the child by a pet
    name (小X: a name like it, nothing else to go on) stayed under the suggest threshold
    and intake opened a second file."""
    from db.crypto import phone_index
    from db.models_children import Guardian
    from dispatch.children.matching_service import rekey_children
    from workflows.matching import thresholds

    caseworker = await login(await make_user("caseworker"))
    name, _ = a_name()
    phone = mobile()
    async with sessions() as session, session.begin():
        child = Child(name=name, categories=[])  # no place, age or gender to go on
        session.add(child)
        await session.flush()
        session.add(Guardian(child_id=child.id, relation="母亲", name="张某", phone=phone,
                             phone_index=phone_index(phone), state="away"))
        await session.flush()
        await rekey_children(session, [child])
        child_id = child.id

    body = report(child={"name": "小" + name[-1]},
                  reporter={"name": "张某", "role": "other", "phone": phone})
    created = await client.post("/api/v1/reports", json=body)
    assert created.status_code in (200, 201, 202), created.text
    case_id = created.json()["case_id"]
    await pump()
    found = await _children_of(client, case_id, caseworker)
    assert found["items"] == []  # no second file opened for the same child
    proposed = {c["child_id"]: c for c in found["candidates"]}
    assert child_id in proposed, found
    assert proposed[child_id]["score"] >= thresholds().suggest
    assert "同一电话" in proposed[child_id]["reasons"]
