"""A partner's status message is its case's news (a close reason, a return's why): staff see
it, and retry it, only where they may see the case. A district's staff got the message of a
case next door although the case itself was a 404."""

import secrets

from tests.fixtures.partners import delivered_message
from tests.fixtures.reports import report

pytest_plugins = ("tests.fixtures.partners",)

EAST, WEST = "990102001001", "990103001001"  # 湖东区 and the district next door


async def _delivered_message(client, sessions, jurisdiction: str) -> tuple[int, int, str]:
    """A case in `jurisdiction` and a 12345 message about it, delivered already (so it never
    heads a partner's line): (case id, message id, the message's text)."""
    case_id = (await client.post("/api/v1/reports", json=report(jurisdiction=jurisdiction))
               ).json()["case_id"]
    text = f"已办结。处理结果：家访核实{secrets.token_hex(4)}"
    return case_id, await delivered_message(sessions, case_id, text), text


async def test_partner_messages_are_scoped_like_their_case(
    client, sessions, partners, make_user, login
):
    east_case, east_message, east_text = await _delivered_message(client, sessions, EAST)
    west_case, west_message, west_text = await _delivered_message(client, sessions, WEST)
    operator = await login(await make_user("operator", None, "990102"))
    supervisor = await login(await make_user("supervisor", None, "990102"))

    assert (await client.get(f"/api/v1/cases/{west_case}", headers=operator)).status_code == 404
    hidden = await client.get(f"/api/v1/partners/messages/{west_message}", headers=operator)
    assert hidden.status_code == 404 and west_text not in hidden.text
    assert hidden.json()["error"]["code"] == "message_not_found"
    narrowed = await client.get(
        "/api/v1/partners/messages", params={"case_id": west_case}, headers=operator
    )
    assert narrowed.status_code == 200 and narrowed.json()["items"] == []
    listed = await client.get("/api/v1/partners/messages", params={"limit": 500},
                              headers=operator)
    ids = {m["id"] for m in listed.json()["items"]}
    assert east_message in ids and west_message not in ids
    retry = await client.post(f"/api/v1/partners/messages/{west_message}/retry",
                              headers=supervisor)
    assert retry.status_code == 404

    # In scope: as before.
    shown = await client.get(f"/api/v1/partners/messages/{east_message}", headers=operator)
    assert shown.status_code == 200 and shown.json()["message"] == east_text
    again = await client.post(f"/api/v1/partners/messages/{east_message}/retry",
                              headers=supervisor)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_delivered"
    city = await login(await make_user("operator"))
    for message_id in (east_message, west_message):
        response = await client.get(f"/api/v1/partners/messages/{message_id}", headers=city)
        assert response.status_code == 200
