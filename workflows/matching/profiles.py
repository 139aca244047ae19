"""Profiles from what the service stores: a report's fields, a child record's fields."""

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from db import clock
from workflows import config
from workflows.matching.normalize import place_in_text
from workflows.matching.score import Profile


def report_profile(
    *,
    child: dict[str, Any] | None,
    address: str | None,
    phone_index: str | None,
    jurisdiction: str | None,
    categories: Iterable[str] = (),
    text: str | None = None,
    at: datetime | None = None,
) -> Profile:
    child = child or {}
    return Profile(
        name=child.get("name"),
        age=child.get("age"),
        gender=child.get("gender"),
        address=address or child.get("address") or place_in_text(text),
        jurisdiction=jurisdiction,
        phones=frozenset([phone_index] if phone_index else []),
        at=at,
        categories=frozenset(categories),
        text=text,
    )


def age_at(birth_date: date | None, age: int | None, given_on: date | None, on: date) -> int | None:
    """A child's age on a day: from the birth date, or the given age grown since."""
    if birth_date:
        years = on.year - birth_date.year
        return years - ((on.month, on.day) < (birth_date.month, birth_date.day))
    if age is not None:
        return age + (((on - given_on).days // 365) if given_on else 0)
    return None


def today() -> date:
    """The deployment's day now (the one clock, in risk.toml's timezone): a child's age
    turns on the local date, not the server's."""
    return clock.now().astimezone(ZoneInfo(config.risk().timezone)).date()


def child_profile(
    *,
    name: str | None,
    gender: str | None,
    birth_date: date | None,
    age: int | None,
    age_given_on: date | None,
    address: str | None,
    jurisdiction: str | None,
    phones: Iterable[str] = (),
    categories: Iterable[str] = (),
    id_index: str | None = None,
    on: datetime | None = None,
) -> Profile:
    """A child record as a profile at `on` (its age then, so a ±1 year check is fair)."""
    day = on.date() if on else today()
    return Profile(
        name=name,
        age=age_at(birth_date, age, age_given_on, day),
        gender=gender,
        address=address,
        jurisdiction=jurisdiction,
        phones=frozenset(p for p in phones if p),
        at=on,
        categories=frozenset(categories),
        id_index=id_index,
    )
