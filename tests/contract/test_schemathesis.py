"""Schemathesis against our own /openapi.json, on the app served over real HTTP: for every
operation, generated requests (valid ones and deliberately invalid ones) sent with a center
supervisor's token and without any, and each answer checked against the schema: never a 5xx,
a status the operation declares, a declared content type, a body that matches the declared
schema, and every error in the contract's shape with a Chinese message.

Bounded for CI: a fixed handful of examples per operation and mode, derandomized (the same
examples on every run, no example database), no deadline. Measured on the shared two-core
machine: see docs/testing.md.
"""

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from redis import Redis
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.reports import report
from tests.fixtures.servers import PASSWORD

pytest_plugins = ("tests.fixtures.console",)

# Examples per operation and generation mode (positive, negative). Small on purpose: the run
# is about every operation being reached, not about searching one deeply.
EXAMPLES = 5


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


@schemathesis.check
def contract_error_body(ctx, response, case) -> None:
    """Every error is `{"error": {"code", "message"}}` with a Chinese message, and leaks no
    traceback or SQL (api.md, "HTTP")."""
    if response.status_code < 400:
        return None
    text = response.text
    assert "Traceback" not in text and "SELECT " not in text, text[:300]
    body = response.json()
    if case.path == "/readyz":  # 503 names what is down beside the error (declared so)
        assert body["down"], body
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"], body
    assert _has_cjk(error["message"]), body
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    contract_error_body,
]


@pytest.fixture(scope="module")
async def staff(live_url, make_user, login, redis_url) -> Iterator[dict]:
    """A center supervisor's bearer token (the role that reaches the most operations) and
    ids of rows that exist, so some requests get past the 404 to the route's real work."""
    user = await make_user("supervisor")
    headers = await login(user)
    async with httpx.AsyncClient(base_url=live_url) as http:
        made = await http.post("/api/v1/reports", json=report())
        assert made.status_code == 201, made.text
        sign_in = await http.post(
            "/api/v1/auth/token", data={"username": user.username, "password": PASSWORD}
        )
        assert sign_in.status_code == 200, sign_in.text
        case_id = made.json()["case_id"]
        child = await http.post(f"/api/v1/cases/{case_id}/children", headers=headers,
                                json={"reason": "schemathesis"})
        assert child.status_code == 201, child.text
    known = {"case_id": case_id, "report_id": made.json()["report_id"],
             "child_id": child.json()["child_id"]}
    yield {"headers": headers, "known": known}
    # The generated logins are failures from 127.0.0.1: forget them, so the browser tests
    # that sign in over the same address later in the run are not rate limited.
    redis = Redis.from_url(redis_url)
    for pattern in ("hotline:rl:*", "hotline:login:*"):
        for key in redis.scan_iter(pattern):
            redis.delete(key)


def _negatable(operation) -> bool:
    """Whether anything about the operation's input can be invalid as sent. Not so for an
    operation with no parameters and a body that is, at most, a form of optional strings
    (Twilio's webhooks): every form value is a string, so Hypothesis would spend seconds
    rejecting every negated example it draws. Their odd input is the positive mode's
    arbitrary strings (and tests/telephony)."""
    raw = operation.definition.raw
    if raw.get("parameters"):
        return True
    for media_type, content in raw.get("requestBody", {}).get("content", {}).items():
        body = content.get("schema", {})
        fields = body.get("properties", {}).values()
        optional_strings = not body.get("required") and all(
            field.get("type") == "string" for field in fields
        )
        if media_type != "application/x-www-form-urlencoded" or not optional_strings:
            return True
    return False


def _strategies(operation, known: dict[str, int], headers: dict[str, str]):
    path_names = {p.name for p in operation.path_parameters}
    fixed = {k: v for k, v in known.items() if k in path_names}
    modes = [GenerationMode.POSITIVE]
    if _negatable(operation):
        modes.append(GenerationMode.NEGATIVE)
    for mode in modes:
        strategies = [operation.as_strategy(generation_mode=mode, headers=headers)]
        if fixed and mode is GenerationMode.POSITIVE:
            strategies.append(
                operation.as_strategy(generation_mode=mode, headers=headers, path_parameters=fixed)
            )
        yield mode, st.one_of(strategies)


def test_every_operation_answers_as_its_schema_says(live_url, staff):
    schema = schemathesis.openapi.from_url(f"{live_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 100
    failures: list[str] = []
    for operation in operations:
        for mode, strategy in _strategies(operation, staff["known"], staff["headers"]):

            @given(case=strategy)
            @settings(
                max_examples=EXAMPLES,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck),
            )
            def probe(case) -> None:
                case.call_and_validate(checks=CHECKS)
                case.headers.pop("Authorization", None)  # and the same without signing in
                case.call_and_validate(checks=CHECKS)

            try:
                probe()
            except Unsatisfiable:
                # negative mode only: no value of these parameters is invalid once sent as a
                # string (a path segment, a free-text query)
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - gather them all
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    assert not failures, "\n\n".join(failures)
