"""Partner sources are configuration: a fourth source (a district's grid-management
system) with its own field names and signature secret, added without code, takes work
orders like 110/12345/12355 and its child is matched with the others."""

import secrets
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete

from db.partners import Partner
from tests.fixtures.children import a_name, a_place
from tests.fixtures.partners import set_partner
from tests.fixtures.reports import report
from workflows.config import load

pytest_plugins = ("tests.fixtures.partners",)
SHIPPED = Path(__file__).resolve().parents[2] / "workflows" / "config" / "partners.toml"
GRID = '''
[sources.grid]
name = "网格化管理系统"
auto_register = false
[sources.grid.urgency]
"紧急" = "emergency"
default = "normal"
[sources.grid.fields]
external_id = "event_no"
content = "event_desc"
received_at = "found_at"
address = "location.text"
"child.name" = "person.name"
"child.age" = "person.age"
urgency = "level"
'''


@pytest.fixture
async def grid_source(tmp_path, monkeypatch, sessions):
    (tmp_path / "partners.toml").write_text(SHIPPED.read_text(encoding="utf-8") + GRID,
                                            encoding="utf-8")
    monkeypatch.setenv("HOTLINE_CONFIG_DIR", str(tmp_path))
    load.cache_clear()
    yield
    monkeypatch.delenv("HOTLINE_CONFIG_DIR")
    load.cache_clear()
    async with sessions() as session, session.begin():  # later tests know three partners
        await session.execute(delete(Partner).where(Partner.source == "grid"))


async def test_a_configured_fourth_source_takes_orders_in_its_own_fields(
    app, client, post_forward, grid_source, make_user, login, pump, sessions
):
    secret = "grid-secret-" + secrets.token_hex(8)
    await set_partner(app, "grid", secret=secret)
    name, sound_alike = a_name()
    place = a_place()
    web = await client.post("/api/v1/reports", json=report(
        child={"name": name, "age": 9, "gender": "male", "address": f"{place}小区4栋"}))
    body = {
        "event_no": f"GRID-{secrets.token_hex(4)}",
        "event_desc": "网格员巡查发现一名男孩独自在家，多日无人照看，家中无食物。",
        "found_at": datetime.now(UTC).isoformat(),
        "location": {"text": f"{place}4号楼"},
        "person": {"name": sound_alike, "age": 9},
        "level": "一般",
    }
    accepted = await post_forward("grid", body, secret=secret)
    assert accepted.status_code == 202, accepted.text
    again = await post_forward("grid", body, secret=secret)
    assert again.json()["duplicate"] is True and again.json()["case_id"] == accepted.json()[
        "case_id"]
    wrong = await post_forward("grid", {**body, "event_no": "GRID-x"}, secret="not-it")
    assert wrong.status_code == 401
    await pump()
    caseworker = await login(await make_user("caseworker"))
    case = (await client.get(f"/api/v1/cases/{accepted.json()['case_id']}",
                             headers=caseworker)).json()
    assert case["state"] == "discovered"  # auto_register = false: an operator looks first
    assert case["reports"][0]["channel"] == "grid"
    assert case["reports"][0]["child"]["name"] == sound_alike
    similar = (await client.get(f"/api/v1/cases/{accepted.json()['case_id']}/similar",
                                headers=caseworker)).json()["items"]
    assert web.json()["case_id"] in {i["case_id"] for i in similar}
    unknown = await post_forward("12345", body, path="")
    assert unknown.status_code == 422  # 12345 has no mapping: its own field names
