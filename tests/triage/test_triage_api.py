"""`POST /api/v1/triage`: the same judgement every report gets, for any staff member's text;
its limits and errors, its place in the OpenAPI schema, and the call page's live panel."""

from tests.fixtures.console import form_token
from tests.fixtures.texts import BELT_THREAT, CONSULTATION, PREGNANT_GIRL

pytest_plugins = ("tests.fixtures.console", "tests.fixtures.twilio")

FIELDS = {
    "categories",
    "scores",
    "emergency",
    "situations",
    "jurisdiction",
    "not_a_case",
    "risk",
    "evidence",
    "version",
}


def _judge(client, headers):
    async def ask(text):
        answer = await client.post("/api/v1/triage", json={"text": text}, headers=headers)
        return answer

    return ask


async def test_the_judgement_of_a_text_has_the_contracts_shape(client, make_user, login):
    staff = await login(await make_user("caseworker"))
    ask = _judge(client, staff)
    answer = await ask(BELT_THREAT)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == FIELDS
    assert body["emergency"] is True and body["not_a_case"] is None
    phrases = body["evidence"]["emergency"]
    assert phrases and all(isinstance(p, str) and p in BELT_THREAT for p in phrases)

    girl = (await ask(PREGNANT_GIRL)).json()
    assert girl["categories"][0] == "sexual_abuse" and girl["situations"] == [2]
    assert 0 <= girl["scores"]["sexual_abuse"] <= 1
    question = (await ask(CONSULTATION)).json()
    assert question["not_a_case"] == "consultation" and question["emergency"] is False
    place = (await ask("湖滨村有个孩子在乞讨")).json()
    assert place["jurisdiction"] == "990103001001"


async def test_too_long_empty_or_unsigned_texts_are_refused(client, make_user, login):
    staff = await login(await make_user("liaison", "education", "990102"))
    ask = _judge(client, staff)
    too_long = await ask("孩" * 5001)
    assert too_long.status_code == 422
    assert too_long.json()["error"]["code"] == "text_too_long"
    assert "5000" in too_long.json()["error"]["message"]
    assert (await ask("孩" * 5000)).status_code == 200
    empty = await ask("  ")
    assert empty.status_code == 422 and "5000" in empty.json()["error"]["message"]
    assert (await client.post("/api/v1/triage", json={}, headers=staff)).status_code == 422
    assert (await ask(3)).status_code == 422
    assert (await client.post("/api/v1/triage", json={"text": "x"})).status_code == 401
    admin = await login(await make_user("admin"))
    assert (await _judge(client, admin)("x")).status_code == 403


async def test_the_triage_endpoint_is_in_the_openapi_schema_with_its_response(client):
    schema = (await client.get("/openapi.json")).json()
    operation = schema["paths"]["/api/v1/triage"]["post"]
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    answer = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert FIELDS <= set(answer["properties"])
    assert "patch" in schema["paths"]["/api/v1/cases/{case_id}"]


async def test_the_call_page_shows_the_judgement_as_notes_are_typed(
    make_user, console_client, seed
):
    call_sid = await seed.waiting_call()
    operator = await console_client(await make_user("operator"))
    page = await operator.get(f"/console/operator/calls/{call_sid}/report")
    assert page.status_code == 200
    assert 'data-triage-url="/console/triage"' in page.text and 'id="triage-live"' in page.text
    token = form_token(page.text)
    live = await operator.post("/console/triage", data={"csrf_token": token, "text": BELT_THREAT})
    assert live.status_code == 200
    assert "紧急" in live.text and "依据" in live.text
    asked = await operator.post("/console/triage", data={"csrf_token": token, "text": CONSULTATION})
    assert "疑似咨询" in asked.text
    long = await operator.post("/console/triage", data={"csrf_token": token, "text": "孩" * 5001})
    assert "最多5000字" in long.text
    refused = await operator.post("/console/triage", data={"csrf_token": "wrong", "text": "x"})
    assert refused.status_code == 403
    liaison = await console_client(await make_user("liaison", "police", "990102"))
    assert (await liaison.post("/console/triage", data={"text": "x"})).status_code == 403
