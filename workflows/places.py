"""Which jurisdiction an address is in, from the names in the reference data.

Partners' work orders often carry an address but no (or a foreign) jurisdiction code; a case
without a jurisdiction would go to the city's offices instead of the district's. Each
jurisdiction is known by its own part of the name ("东湖市湖东区" → "湖东区", "湖东区幸福街道"
→ "幸福街道"); the deepest part found in the address wins, if it is unambiguous.
"""

from functools import lru_cache

from workflows.reference import jurisdictions


@lru_cache
def _segments() -> tuple[dict[str, str], dict[str, str | None], dict[str, int]]:
    segment: dict[str, str] = {}
    parent: dict[str, str | None] = {}
    level: dict[str, int] = {}
    for code, name, lvl, up in jurisdictions():  # parents first
        own = name
        if up and up in segment and name.startswith(segment[up]) and name != segment[up]:
            own = name[len(segment[up]) :]
        segment[code], parent[code], level[code] = own, up, lvl
    return segment, parent, level


def jurisdiction_from_address(address: str | None) -> str | None:
    """The deepest jurisdiction named in the address, or None when none or it is ambiguous."""
    if not address:
        return None
    segment, parent, level = _segments()
    found = {code for code, own in segment.items() if own and own in address}
    for depth in sorted({level[c] for c in found}, reverse=True):
        here = [c for c in found if level[c] == depth]
        if len(here) > 1:  # the same name in two places: keep those whose parents also match
            here = [c for c in here if parent[c] in found]
        if len(here) == 1:
            return here[0]
    return None


def root_jurisdiction() -> str | None:
    """The one top-level jurisdiction (the city), where a place cannot be told."""
    roots = [code for code, _, _, up in jurisdictions() if not up]
    return roots[0] if len(roots) == 1 else None
