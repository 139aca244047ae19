"""The OpenAPI schema as the service really answers: every error status a route can give,
with the contract's error body, and no reference that points nowhere.

Most statuses follow from what a route depends on, so they are derived here rather than
repeated on every decorator: a staff token (401, 403), a path parameter (404), parameters
or a body (422), a body at all (400 when it does not parse, 413; 415 with `json_only`), a
body naming a row by its id (404), Twilio's signed form (400, 403, 413, 503), the database
behind every `/api/` route (503), a state-changing staff call on one resource, named in its
path or its body (409). What only a route's own code knows (a rate limit, a wrong password)
it declares with `channels.errors.declared`.
"""

from collections.abc import Callable, Iterator
from typing import Any, get_args

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel

from channels.errors import ERROR_SCHEMA, ERROR_SCHEMA_NAME, declared
from channels.twilio.webhook import twilio_form
from channels.web import json_only
from db.columns import CASE_ID_MAX
from dispatch.staff.auth import current_principal
from workflows import config
from workflows.casework.guardianship import placement_kinds, steps
from workflows.reference import category_labels, department_labels, jurisdiction_labels
from workflows.referrals.deadlines import levels
from workflows.referrals.workflow import STATUS_LABELS

_FASTAPI_422 = ("HTTPValidationError", "ValidationError")


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _params(dependant: Dependant, kind: str) -> bool:
    return bool(getattr(dependant, kind)) or any(
        _params(sub, kind) for sub in dependant.dependencies
    )


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in get_args(annotation):
        yield from _models(arg)


def _body_names_a_row(dependant: Dependant) -> bool:
    """A body field `…_id` (the case to flag, the record to link): a row that may not exist,
    or may not be in the state the call needs."""
    for param in dependant.body_params:
        if param.name.endswith("_id"):
            return True
        for model in _models(param.field_info.annotation):
            if any(name.endswith("_id") for name in model.model_fields):
                return True
    return False


def statuses(route: RouteContext) -> set[int]:
    """The error statuses a route can answer, from what it depends on."""
    calls = set(_calls(route.dependant))
    out: set[int] = set()
    staff = current_principal in calls
    if staff:
        out |= {401, 403}
    has_path = "{" in route.path
    if has_path:
        out |= {404, 422}
    if any(_params(route.dependant, k) for k in ("query_params", "body_params", "path_params")):
        out.add(422)
    if json_only in calls:
        out |= {400, 413, 415, 422}
    elif route.dependant.body_params:
        # a body that does not parse (JSON, or a form's multipart) is 400 with or without
        # json_only in front of it
        out |= {400, 413, 422}
    names_a_row = _body_names_a_row(route.dependant)
    if names_a_row:
        out.add(404)
    if twilio_form in calls:
        out |= {400, 403, 413, 503}
    if route.path.startswith(("/api/", "/metrics")):  # the database behind them
        out.add(503)
    if staff and (has_path or names_a_row) and route.methods - {"GET", "HEAD"}:
        out.add(409)
    return out


def _hoist_defs(node: Any, found: dict[str, Any]) -> Any:
    """Move nested `$defs` (pydantic's, in bodies given by hand) into the components and
    point their references there: `#/$defs/X` means nothing at the operation's level."""
    if isinstance(node, dict):
        for name, schema in node.pop("$defs", {}).items():
            found[name] = _hoist_defs(schema, found)
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                node[key] = "#/components/schemas/" + value.removeprefix("#/$defs/")
            else:
                _hoist_defs(value, found)
    elif isinstance(node, list):
        for item in node:
            _hoist_defs(item, found)
    return node


# Values a field takes from the deployment's reference data: the model marks the field with
# `x-choices`, and the schema lists this deployment's values as its `enum`; `x-limit` names
# a bound in the deployment's channels.toml ("section.key"), the schema's maximum.
CHOICES: dict[str, Callable[[], Any]] = {
    "category": category_labels,
    "department": department_labels,
    "jurisdiction": jurisdiction_labels,
    "risk_level": levels,
    "referral_status": lambda: STATUS_LABELS,
    "placement_kind": placement_kinds,
    "intervention_step": lambda: [s.code for s in steps()],
}


def _fill_deployment_values(node: Any) -> None:
    if isinstance(node, dict):
        kind = node.pop("x-choices", None)
        if kind is not None:
            values = list(CHOICES[kind]())
            branches = [b for b in node.get("anyOf", [node]) if b.get("type") == "string"]
            for branch in branches or [node]:
                branch["enum"] = values
        if limit := node.pop("x-limit", None):
            section, key = limit.split(".")
            bound = int(getattr(getattr(config.channels(), section), key))
            node["maxLength" if node.get("type") == "string" else "maximum"] = bound
        for value in node.values():
            _fill_deployment_values(value)
    elif isinstance(node, list):
        for item in node:
            _fill_deployment_values(item)


# Case and report ids are PostgreSQL bigints (db.columns); every other row id an integer.
_BIGINT_IDS = {"case_id", "report_id", "into_case_id"}


def _bound_id(schema: dict[str, Any], name: str) -> None:
    top = CASE_ID_MAX if name in _BIGINT_IDS else 2**31 - 1
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") == "integer":
            branch.setdefault("minimum", 1)
            branch.setdefault("maximum", top)


def _bound_ids(schema: dict[str, Any]) -> None:
    """Row ids are PostgreSQL integers: a larger one is refused (422), so the schema says
    where they end: every integer path parameter, and every `…_id` field of a request."""
    for operations in schema["paths"].values():
        for operation in operations.values():
            for param in operation.get("parameters", []):
                if param["in"] == "path":
                    _bound_id(param.get("schema", {}), param["name"])
    for component in schema["components"]["schemas"].values():
        for name, prop in component.get("properties", {}).items():
            if name.endswith("_id") and component.get("title", "").endswith("In"):
                _bound_id(prop, name)


def amend(schema: dict[str, Any], routes: list[Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for route in iter_route_contexts(routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods:
            operation = schema["paths"][route.path_format][method.lower()]
            responses = operation.setdefault("responses", {})
            for status in sorted(statuses(route)):
                current = responses.get(str(status))
                if current is None or _FASTAPI_422[0] in str(current):
                    responses[str(status)] = declared(status)[status]
            for status, response in responses.items():
                # an error a route declared by its description only gets the error body
                if int(status) >= 400 and "content" not in response:
                    response["content"] = declared(int(status))[int(status)]["content"]
    _bound_ids(schema)
    hoisted: dict[str, Any] = {}
    _hoist_defs(schema["paths"], hoisted)
    for name, body in hoisted.items():
        components.setdefault(name, body)
    for name in _FASTAPI_422:
        components.pop(name, None)
    components[ERROR_SCHEMA_NAME] = ERROR_SCHEMA
    _fill_deployment_values(schema)
    return schema


def install(app: FastAPI) -> None:
    """Serve the amended schema at /openapi.json (built once, on first request)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = amend(generate(), app.routes)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
