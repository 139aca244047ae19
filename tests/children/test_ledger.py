"""Ledger import (基础台帐) and canvassing rounds: new, matched, conflicting and invalid rows;
the dry run writing nothing; by command and by console upload; children not seen listed."""

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta

from openpyxl import Workbook
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from db.models_children import Child, Guardian, LedgerImport
from dispatch.ops.cli import app as cli
from tests.fixtures.children import HEADER, a_name, a_place, an_id, csv_bytes, named
from tests.fixtures.console import form_token

pytest_plugins = ("tests.fixtures.console",)
def row(name, idn, birth, place, *, gender="男", phone="13700000000", state="外出务工"):
    return [name, idn, gender, birth, "东湖市湖东区", f"{place}小区8栋", "留守流动",
            "张某", "母亲", phone, state, "东湖第一小学", "幸福街道幸福里社区"]


async def _count(sessions, *where) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(Child).where(*where))


async def _import(client, headers, content: bytes, name: str, *, dry_run: bool, kind="ledger"):
    response = await client.post(
        "/api/v1/children/import", headers=headers,
        files={"file": (name, content)},
        data={"dry_run": "true" if dry_run else "false", "kind": kind})
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_ledger_with_new_matching_and_conflicting_rows_and_its_dry_run(
    client, make_user, login, sessions, monkeypatch, database_url, tmp_path
):
    caseworker = await login(await make_user("caseworker"))
    (a, _), (b, _), (c, _) = a_name(), a_name(), a_name()
    place = a_place()
    ida, idb, idc = an_id(), an_id(), an_id()
    first = csv_bytes([row(a, ida, "2015-03-08", place), row(b, idb, "2016-05-01", place)])
    done = await _import(client, caseworker, first, "ledger-1.csv", dry_run=False)
    assert done["counts"] == {"new": 2, "matched": 0, "conflicting": 0, "invalid": 0}
    async with sessions() as session:
        child = (await session.execute(select(Child).where(named(a)))).scalar_one()
        guardian = (await session.execute(
            select(Guardian).where(Guardian.child_id == child.id))).scalar_one()
    assert child.id_number == ida and child.school == "东湖第一小学"
    assert guardian.state == "away" and guardian.phone == "+8613700000000"

    second = csv_bytes([
        row(a, ida, "2015-03-08", place),                 # the same child again
        row(b, idb, "2016-09-09", place),                 # same ID, another birth date
        row(c, idc, "2014-01-01", place, gender="女"),    # new
        row("", an_id(), "2015-01-01", place),            # no name
        row(c + "甲", idc[:-1], "2014-01-01", place),     # a short ID number
    ])
    before = await _count(sessions)
    dry = await _import(client, caseworker, second, "ledger-2.csv", dry_run=True)
    assert dry["counts"] == {"new": 1, "matched": 1, "conflicting": 1, "invalid": 2}
    by_row = {r["row"]: r for r in dry["rows"]}
    assert by_row[2]["status"] == "matched" and by_row[2]["child_id"] == child.id
    assert "身份证号相同" in by_row[2]["reasons"]
    assert by_row[3]["status"] == "conflicting" and "出生日期不同" in by_row[3]["reasons"]
    assert by_row[5]["message"] == "第5行：缺少姓名"
    assert "15或18位" in by_row[6]["message"]
    assert await _count(sessions) == before  # the dry run wrote nothing
    async with sessions() as session:
        imports = await session.scalar(select(func.count()).select_from(LedgerImport).where(
            LedgerImport.filename == "ledger-2.csv"))
    assert imports == 0

    # By command: the same file, applied; the conflicting row is left for staff.
    path = tmp_path / "ledger-2.csv"
    path.write_bytes(second)
    monkeypatch.setattr("dispatch.ops.cli._database_url", lambda: database_url)
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["children", "import", str(path),
                                                              "--apply"])
    assert result.exit_code == 0, result.output
    assert "已导入：新增 1，已有档案 1，冲突待核实 1，无效 2" in result.output
    assert "出生日期不同" in result.output
    assert await _count(sessions) == before + 1
    async with sessions() as session:
        kept_b = (await session.execute(select(Child).where(named(b)))).scalar_one()
    assert kept_b.birth_date.isoformat() == "2016-05-01"  # never overwritten by a conflict
    dry_again = await asyncio.to_thread(CliRunner().invoke, cli,
                                        ["children", "import", str(path)])
    assert "预览（未写入任何数据" in dry_again.output and "新增 0" in dry_again.output


async def test_wrong_files_are_refused_with_what_is_expected(client, make_user, login):
    caseworker = await login(await make_user("caseworker"))
    bad_type = await client.post("/api/v1/children/import", headers=caseworker,
                                 files={"file": ("ledger.txt", b"x")})
    assert bad_type.status_code == 422 and ".xlsx" in bad_type.json()["error"]["message"]
    no_header = await client.post("/api/v1/children/import", headers=caseworker,
                                  files={"file": ("ledger.csv", "甲,乙\n1,2\n".encode())})
    assert no_header.status_code == 422 and "姓名" in no_header.json()["error"]["message"]
    operator = await login(await make_user("operator"))
    assert (await client.post("/api/v1/children/import", headers=operator,
                              files={"file": ("l.csv", b"x")})).status_code == 403


async def test_a_canvassing_round_by_upload_lists_children_not_seen(
    client, make_user, console_client, sessions
):
    (a, _), (b, _) = a_name(), a_name()
    place = a_place()
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER[:6] + ["辖区", "走访日期"])
    sheet.append([a, an_id(), "男", "2013-02-02", "湖东区", f"{place}1栋", "南山县青石镇石门村",
                  datetime.now(UTC).date()])
    sheet.append([b, an_id(), "女", "2012-02-02", "湖东区", f"{place}2栋", "南山县青石镇石门村",
                  datetime.now(UTC).date()])
    content = io.BytesIO()
    book.save(content)
    worker = await console_client(await make_user("caseworker"))
    page = await worker.get("/console/children/import")
    token = form_token(page.text)
    shown = await worker.post("/console/children/import", data={
        "csrf_token": token, "kind": "canvass", "apply": "yes"},
        files={"file": ("round.xlsx", content.getvalue())})
    assert shown.status_code == 200, shown.text
    assert "导入完成" in shown.text and 'class="count-new">2<' in shown.text
    async with sessions() as session, session.begin():
        await session.execute(update(Child).where(named(b)).values(
            last_seen_at=datetime.now(UTC) - timedelta(days=400)))
    again = await worker.post("/console/children/import", data={
        "csrf_token": token, "kind": "canvass"},
        files={"file": ("round.xlsx", _only_first(content.getvalue()))})
    assert "预览结果（未写入）" in again.text and 'class="count-matched">1<' in again.text
    assert "超过规定期限未见面的儿童" in again.text and b in again.text


def _only_first(xlsx: bytes) -> bytes:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(xlsx))
    book.active.delete_rows(3)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_a_ledger_decides_the_same_when_its_pool_lets_children_go(
    client, make_user, login, monkeypatch
):
    """The import's pool of candidates is capped (memory bounded on a large table): with a
    cap of one child and two rows a chunk, the keys a later chunk asks for again are looked
    up again, and every row's decision is the one an import keeping everything makes."""
    caseworker = await login(await make_user("caseworker"))
    names = [a_name() for _ in range(4)]
    place = a_place()
    ids = [an_id() for _ in names]
    births = ["2015-03-08", "2016-05-01", "2014-01-01", "2013-07-07"]
    on_file = csv_bytes([row(n, i, b, place)
                         for (n, _), i, b in zip(names, ids, births, strict=True)])
    assert (await _import(client, caseworker, on_file, "on-file.csv", dry_run=False)
            )["counts"]["new"] == 4
    ledger = csv_bytes([
        row(names[0][0], ids[0], births[0], place),          # chunk 1
        row(names[1][1], "", births[1], place),
        row(names[2][0], ids[2], "2014-02-02", place),       # chunk 2: other names
        row(names[3][1], "", births[3], place, gender="女"),
        row(names[0][1], "", births[0], place),              # chunk 3: the first names again
        row(names[1][0], ids[1], births[1], place),
    ])
    kept_everything = await _import(client, caseworker, ledger, "ledger.csv", dry_run=True)

    from dispatch.children import ledger as importer

    asked: list[str] = []
    lookup = importer._candidates

    async def counted(session, principal, wanted):
        asked.extend(wanted)
        return await lookup(session, principal, wanted)

    monkeypatch.setattr(importer, "POOL_CHILDREN", 1)
    monkeypatch.setattr(importer, "CHUNK", 2)
    monkeypatch.setattr(importer, "_candidates", counted)
    capped = await _import(client, caseworker, ledger, "ledger.csv", dry_run=True)
    assert len(asked) > len(set(asked))  # keys let go were looked up again
    assert capped["rows"] == kept_everything["rows"]
    assert capped["counts"] == kept_everything["counts"]


async def test_a_ledger_filling_a_field_keeps_the_guardians_phone_key(
    client, make_user, login, sessions, pump
):
    """Issue 12: a row that matched a child on file and filled a field it lacked rebuilt the
    child's keys without its guardians' phones, so a report from the guardian's phone no
    longer found the child, and intake opened a second file."""
    from datetime import date

    from db.crypto import phone_index
    from tests.fixtures.reports import report
    from tests.fixtures.twilio_fake import mobile
    from workflows.matching.keys import sealed

    caseworker = await login(await make_user("caseworker"))
    name, _ = a_name()
    idn, phone = an_id(), mobile()
    born = date.today() - timedelta(days=round(10.5 * 365.25))  # ten years old
    header = ["姓名", "身份证号", "性别", "出生日期", "现住址", "监护人姓名", "监护人关系",
              "监护人电话", "监护状况", "学校", "辖区"]

    def ledger(*, school: str) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerow([name, idn, "男", born.isoformat(), f"{a_place()}8栋", "张某", "母亲",
                         phone, "外出务工", school, "幸福街道幸福里社区"])
        return out.getvalue().encode("utf-8-sig")

    phone_key = sealed(["p:" + phone_index(phone)])[0]
    first = await _import(client, caseworker, ledger(school=""), "issue12-1.csv", dry_run=False)
    assert first["counts"]["new"] == 1
    async with sessions() as session:
        child = (await session.execute(select(Child).where(named(name)))).scalar_one()
    assert child.school is None and phone_key in child.match_keys

    again = await _import(client, caseworker, ledger(school="东湖第一小学"), "issue12-2.csv",
                          dry_run=False)
    assert again["counts"]["matched"] == 1 and again["rows"][0]["child_id"] == child.id
    async with sessions() as session:
        child = (await session.execute(select(Child).where(named(name)))).scalar_one()
    assert child.school == "东湖第一小学"  # the field the row filled
    assert phone_key in child.match_keys

    # The mother calls from her number about 小X: only the phone key is shared with the file.
    body = report(child={"name": "小" + name[-1], "age": 10, "gender": "male"},
                  reporter={"name": "张某", "role": "other", "phone": phone})
    created = await client.post("/api/v1/reports", json=body)
    assert created.status_code in (200, 201, 202), created.text
    case_id = created.json()["case_id"]
    await pump()
    found = await client.get(f"/api/v1/cases/{case_id}/children", headers=caseworker)
    assert found.status_code == 200, found.text
    assert found.json()["items"] == []  # no second file opened for the same child
    assert child.id in [c["child_id"] for c in found.json()["candidates"]]


def _ledger(header: list[str], *rows: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8-sig")


async def test_a_ledger_row_with_a_guardians_number_on_file_scores_the_same_phone(
    client, make_user, login
):
    """Issue 12: the ledger's candidates were scored without their guardians' phones, so a
    row giving the number of a guardian on file never had the "same phone" signal (here it
    makes a same-sounding name at the same place a match, not a row for staff)."""
    from tests.fixtures.twilio_fake import mobile

    caseworker = await login(await make_user("caseworker"))
    name, sound_alike = a_name()
    phone = mobile()
    header = ["姓名", "监护人关系", "监护人电话", "辖区"]
    first = await _import(client, caseworker, _ledger(header, [name, "母亲", phone,
                                                               "幸福街道幸福里社区"]),
                          "phone-1.csv", dry_run=False)
    assert first["counts"]["new"] == 1
    again = await _import(client, caseworker, _ledger(header, [sound_alike, "母亲", phone,
                                                               "幸福街道幸福里社区"]),
                          "phone-2.csv", dry_run=True)
    assert again["rows"][0]["child_id"] == first["rows"][0]["child_id"]
    assert again["rows"][0]["status"] == "matched", again["rows"]
    assert "同一电话" in again["rows"][0]["reasons"]


async def test_a_matched_rows_new_guardian_is_listed_by_the_dry_run_and_added_once(
    client, make_user, login, sessions
):
    """Issue 12: a row matching a child on file dropped its guardian, so a guardian's number
    given by a later ledger was lost. The dry run lists it as the row's change and writes
    nothing; the import adds it (an event on the file, the phone among the child's keys);
    the same ledger again adds nothing."""
    from db.crypto import phone_index
    from db.models_children import ChildEvent
    from tests.fixtures.twilio_fake import mobile
    from workflows.matching.keys import sealed

    caseworker = await login(await make_user("caseworker"))
    name, _ = a_name()
    idn, mother, father = an_id(), mobile(), mobile()
    header = ["姓名", "身份证号", "监护人姓名", "监护人关系", "监护人电话", "监护状况", "辖区"]

    def ledger(guardian: str, relation: str, phone: str) -> bytes:
        return _ledger(header, [name, idn, guardian, relation, phone, "外出务工",
                                "幸福街道幸福里社区"])

    async def guardians(child_id: int) -> list[tuple[str, str | None]]:
        async with sessions() as session:
            return [(g.relation, g.phone_index) for g in (await session.execute(
                select(Guardian).where(Guardian.child_id == child_id)
                .order_by(Guardian.id))).scalars()]

    first = await _import(client, caseworker, ledger("张某", "母亲", mother), "g-1.csv",
                          dry_run=False)
    child_id = first["rows"][0]["child_id"]
    assert first["counts"]["new"] == 1
    assert await guardians(child_id) == [("母亲", phone_index(mother))]

    second = ledger("李某", "父亲", father)
    preview = await _import(client, caseworker, second, "g-2.csv", dry_run=True)
    assert preview["rows"][0]["status"] == "matched"
    assert preview["rows"][0]["child_id"] == child_id
    assert preview["rows"][0]["changes"] == ["新增监护人（父亲）"]
    assert await guardians(child_id) == [("母亲", phone_index(mother))]  # nothing written

    done = await _import(client, caseworker, second, "g-2.csv", dry_run=False)
    assert done["rows"][0]["changes"] == ["新增监护人（父亲）"]
    assert await guardians(child_id) == [("母亲", phone_index(mother)),
                                         ("父亲", phone_index(father))]
    async with sessions() as session:
        child = await session.get(Child, child_id)
        added = (await session.execute(select(ChildEvent).where(
            ChildEvent.child_id == child_id, ChildEvent.event == "guardian_added"))).scalars()
        added = [e.data for e in added]
    assert {k for k in child.match_keys if k.startswith("p:")} == set(
        sealed(["p:" + phone_index(mother), "p:" + phone_index(father)]))
    assert added == [{"relation": "父亲", "state": "away", "import": done["import_id"]}]

    # The same ledger again, and the first one: both guardians are on file already (by
    # number; by name and relation).
    again = await _import(client, caseworker, second, "g-3.csv", dry_run=False)
    assert again["rows"][0]["status"] == "matched" and again["rows"][0]["changes"] == []
    by_name = await _import(client, caseworker, ledger("张某", "母亲", mobile()), "g-4.csv",
                            dry_run=True)
    assert by_name["rows"][0]["changes"] == []
    assert len(await guardians(child_id)) == 2
