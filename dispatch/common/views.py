"""A response model filled from a row: the fields named alike are copied, not listed."""

from typing import Any, TypeVar

from pydantic import BaseModel

V = TypeVar("V", bound=BaseModel)


def from_row(view: type[V], row: object, /, **values: Any) -> V:
    """`view` with `values`, and every other field the row's attribute of the same name (a
    field the row does not have is an AttributeError: name it in `values`)."""
    copied = {name: getattr(row, name) for name in view.model_fields if name not in values}
    return view(**copied, **values)
