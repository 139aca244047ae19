"""The schema at /openapi.json says what the service answers: every error status with the
contract's body, references that resolve, the deployment's own choices."""

import re

CONTRACT_STATUSES = {"400", "401", "403", "404", "409", "413", "415", "422", "429", "503"}


async def _schema(client) -> dict:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def _operations(schema: dict):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield method.upper(), path, operation


def _refs(node, found: list[str]) -> list[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                found.append(value)
            else:
                _refs(value, found)
    elif isinstance(node, list):
        for item in node:
            _refs(item, found)
    return found


def _resolve(schema: dict, ref: str):
    assert ref.startswith("#/"), ref
    node = schema
    for part in ref[2:].split("/"):
        node = node[part]
    return node


async def test_every_reference_resolves(client):
    schema = await _schema(client)
    refs = _refs(schema, [])
    assert "#/components/schemas/ForwardChild" in refs  # the forwards body's child
    for ref in refs:
        _resolve(schema, ref)
    assert "$defs" not in str(schema)


async def test_errors_are_declared_with_the_contract_shape(client):
    schema = await _schema(client)
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert error["properties"]["error"]["required"] == ["code", "message"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for method, path, operation in _operations(schema):
        for status, response in operation["responses"].items():
            if int(status) < 400 or path == "/readyz":
                continue
            assert status in CONTRACT_STATUSES, (method, path, status)
            body = response["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/Error"}, (method, path, status)


async def test_statuses_follow_what_a_route_depends_on(client):
    schema = await _schema(client)
    responses = {(m, p): set(o["responses"]) for m, p, o in _operations(schema)}
    for (method, path), statuses in responses.items():
        if path.startswith("/api/") and path != "/api/v1/auth/token" and not path.startswith(
            ("/api/v1/reports", "/api/v1/receipts", "/api/v1/forwards/{source}")
        ):
            assert {"401", "403", "503"} <= statuses, (method, path)  # staff only
        if "{" in path:
            assert "404" in statuses, (method, path)
    assert {"400", "413", "415", "422", "503"} <= responses[("POST", "/api/v1/reports")]
    assert {"401", "429"} <= responses[("POST", "/api/v1/auth/token")]
    assert {"404", "429"} <= responses[("GET", "/api/v1/receipts/{receipt_code}")]
    assert {"400", "401", "404", "415"} <= responses[("POST", "/api/v1/forwards/{source}")]
    assert "409" in responses[("POST", "/api/v1/referrals/{referral_id}/claim")]
    assert "409" in responses[("POST", "/api/v1/cases/{case_id}/events")]
    assert "403" in responses[("POST", "/channels/twilio/sms")]
    assert {"200", "503"} <= responses[("GET", "/readyz")]
    # a body that does not parse is 400 without json_only too (found by schemathesis)
    assert "400" in responses[("PATCH", "/api/v1/children/{child_id}")]
    assert "400" in responses[("POST", "/api/v1/children/import")]  # a broken multipart
    # a body naming a row by id: that case may not exist, or be flagged already
    assert {"404", "409"} <= responses[("POST", "/api/v1/supervision/key-cases")]


async def test_readyz_declares_what_it_names_when_down(client):
    schema = await _schema(client)
    down = schema["paths"]["/readyz"]["get"]["responses"]["503"]["content"]["application/json"]
    assert down["schema"]["properties"]["down"]["items"]["enum"] == ["postgresql", "redis"]
    _resolve(schema, down["schema"]["properties"]["error"]["$ref"])


async def test_row_ids_in_paths_end_where_postgresql_integers_do(client, make_user, login):
    schema = await _schema(client)
    # case (and report) ids are bigints (0035), every other row id an integer
    case = schema["paths"]["/api/v1/cases/{case_id}"]["get"]["parameters"][0]["schema"]
    assert (case["minimum"], case["maximum"]) == (1, 2**63 - 1)
    referral = schema["paths"]["/api/v1/referrals/{referral_id}/claim"]["post"]["parameters"]
    assert referral[0]["schema"]["maximum"] == 2**31 - 1
    headers = await login(await make_user("supervisor"))
    beyond = await client.get(f"/api/v1/cases/{2**63}", headers=headers)
    assert beyond.status_code == 422 and "Traceback" not in beyond.text
    absent = await client.get(f"/api/v1/cases/{2**31}", headers=headers)
    assert absent.status_code == 404


async def test_a_method_not_allowed_names_every_method_of_the_path(client):
    response = await client.delete("/api/v1/cases/1")
    assert response.status_code == 405
    assert set(re.split(r",\s*", response.headers["allow"])) == {"GET", "PATCH"}
    assert response.json()["error"]["code"] == "method_not_allowed"
    stats = await client.put("/api/v1/forwards/stats")
    assert stats.headers["allow"] == "GET"
