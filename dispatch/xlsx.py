"""Spreadsheet cells from what people typed, safe to open.

A child's name, a liaison's return reason or an SMS can hold anything. Two things go wrong
when they reach a spreadsheet as they are: a control character makes openpyxl refuse the
whole file (IllegalCharacterError: the export is a 500), and text starting with "=" is
written as a formula that Excel runs (formula injection; in CSV also "+", "-", "@").
Every exporter builds its rows through these, so what was typed is shown as typed.
"""

from typing import Any

from fastapi.responses import Response
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_CSV_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _clean(value: str) -> str:
    return ILLEGAL_CHARACTERS_RE.sub("", value)


def row(sheet: Any, values: list[Any]) -> list[Any]:
    """The row to append to `sheet` (normal or write-only): text cleaned, and text that
    looks like a formula kept as text."""
    out: list[Any] = []
    for value in values:
        if isinstance(value, str):
            value = _clean(value)
            if value.startswith("="):
                cell = WriteOnlyCell(sheet, value)  # a Cell either kind of sheet appends
                cell.data_type = "s"
                value = cell
        out.append(value)
    return out


def append(sheet: Any, values: list[Any]) -> None:
    sheet.append(row(sheet, values))


def csv_row(values: list[Any]) -> list[Any]:
    """A CSV row whose text cannot start a formula in Excel (a leading apostrophe, as
    OWASP advises) and holds no control characters."""
    out: list[Any] = []
    for value in values:
        if isinstance(value, str):
            value = _clean(value)
            if value.startswith(_CSV_FORMULA):
                value = "'" + value
        out.append(value)
    return out


def download(content: bytes, name: str) -> Response:
    """A workbook as a file to save (not to show in the browser)."""
    return Response(
        content,
        media_type=MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
