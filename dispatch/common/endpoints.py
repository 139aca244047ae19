"""The staff API's endpoint preamble, written once.

An endpoint names who may call it (`acting`) and runs one service operation in a
transaction of its own (`Caller.run`); the paging and id parameters say the same bounds
everywhere. Aliases of `Annotated` only: the schema at /openapi.json is what the spelled-out
parameters gave.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Query, Request

from channels.web import in_transaction, json_only
from db.columns import CASE_ID_MAX
from dispatch.common.paging import CasePage
from dispatch.staff.auth import Principal
from dispatch.staff.permissions import CASE_DESK, CASEWORK, requires

T = TypeVar("T")

# After the caller's check: a stranger learns 401, not what the endpoint expects.
JsonBody = Annotated[None, Depends(json_only)]
# A page's size (the default, 50, stays at each endpoint).
Limit = Annotated[int, Query(ge=1, le=200)]
# Narrowing a list to one case's rows.
CaseFilter = Annotated[int | None, Query(ge=1, le=CASE_ID_MAX)]
# The previous page's last id (an int4 row id).
BeforeId = Annotated[int | None, Query(ge=1, le=2**31 - 1)]
# An int4 row id in the path: out of range is 422, not a database error.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _case_page(
    case_id: CaseFilter = None, limit: Limit = 50, before_id: BeforeId = None
) -> CasePage:
    return CasePage(case_id, limit, before_id)


# The page of a newest-first list narrowed to one case or not (`case_id`, `limit`, `before_id`).
CasePaging = Annotated[CasePage, Depends(_case_page)]


@dataclass(frozen=True, slots=True)
class Caller:
    """The checked principal with the request it came in: what every service operation
    needs besides its own arguments."""

    request: Request
    principal: Principal

    async def run(self, operation: Callable[..., Awaitable[T]], /, **kwargs: Any) -> T:
        """`operation(session=, ip=, principal=, **kwargs)` in a transaction of its own."""
        return await in_transaction(self.request, operation, principal=self.principal, **kwargs)


def acting(check: Callable[..., Awaitable[Principal]]) -> Any:
    """The parameter type of an endpoint that `check` (a `require…` dependency) admits."""

    async def dependency(
        request: Request, principal: Annotated[Principal, Depends(check)]
    ) -> Caller:
        return Caller(request, principal)

    return Annotated[Caller, Depends(dependency)]


# The callers that several domains' endpoints admit, named once: the center's desk (its
# operators, caseworkers and supervisors) and the center's casework.
CenterStaff = acting(requires(CASE_DESK))
Casework = acting(requires(CASEWORK))
