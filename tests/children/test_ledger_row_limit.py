"""A ledger longer than the import takes at once is refused as too large (413), with the
limit in the message: the import raises the domain's TooLarge, the edge answers it."""

from dispatch.children import ledger
from tests.fixtures.children import a_name, a_place, csv_bytes


def _row(name: str, place: str) -> list[str]:
    return [name, "", "男", "2015-03-08", "东湖市湖东区", f"{place}小区8栋", "留守流动",
            "张某", "母亲", "", "外出务工", "东湖第一小学", "幸福街道幸福里社区"]


async def test_a_ledger_over_the_row_limit_is_refused_as_too_large(
    client, make_user, login, monkeypatch
):
    monkeypatch.setattr(ledger, "MAX_ROWS", 2)
    caseworker = await login(await make_user("caseworker"))
    place = a_place()
    response = await client.post(
        "/api/v1/children/import", headers=caseworker,
        files={"file": ("l.csv", csv_bytes([_row(a_name()[0], place) for _ in range(3)]))},
        data={"dry_run": "true", "kind": "ledger"})
    assert response.status_code == 413
    assert response.json() == {"error": {"code": "too_many_rows",
                                         "message": "一次最多导入 2 行，请分批导入"}}
