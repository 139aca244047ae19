"""The quarterly report (districts report to the city every quarter), as CSV or XLSX.

One row per case received in the quarter, in the viewer's scope, with no personal data
(no names, phones, addresses or report text): codes the product controls, turned into
Chinese labels. Streamed: CSV rows go out as the database cursor yields them; the XLSX is
written row by row to a temporary file (openpyxl's write-only mode, in a worker thread so
the event loop keeps serving) and sent from there, so memory stays flat at any size.
"""

import asyncio
import csv
import io
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from openpyxl import Workbook
from sqlalchemy import func, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from channels.web import sessions
from db.models import Case, Jurisdiction, Referral, Report
from dispatch import xlsx
from dispatch.console import periods
from dispatch.console.periods import Period
from dispatch.console.stats import figures
from dispatch.console.timefmt import local
from dispatch.console.web import CHANNEL_LABELS, ConsoleRoute, ConsoleUser, staff
from dispatch.staff.audit import audit
from dispatch.staff.auth import Principal
from dispatch.staff.permissions import SUPERVISION
from dispatch.staff.scope import case_filter
from workflows.cases.workflow import STATE_LABELS
from workflows.reference import category_labels, department_labels, jurisdiction_labels
from workflows.referrals.deadlines import LEVEL_LABELS
from workflows.referrals.workflow import STATUS_LABELS

router = APIRouter(prefix="/console/reports", route_class=ConsoleRoute, include_in_schema=False)

SUPERVISOR = staff(SUPERVISION)
BATCH = 2000
HEADER = [
    "案件编号",
    "受理时间",
    "来源渠道",
    "所属区县",
    "辖区",
    "困境类型",
    "风险等级",
    "当前状态",
    "紧急",
    "强制报告",
    "转介部门及状态",
    "最后更新",
]


def _rows_query(principal: Principal, period: Period):
    first_channel = (
        select(Report.channel)
        .where(Report.case_id == Case.id)
        .order_by(Report.id)
        .limit(1)
        .scalar_subquery()
    )
    shares = (
        select(
            func.string_agg(
                Referral.department_code.concat(":").concat(Referral.status),
                aggregate_order_by(literal_column("';'"), Referral.id),
            )
        )
        .where(Referral.case_id == Case.id)
        .scalar_subquery()
    )
    place = aliased(Jurisdiction)  # not `Jurisdiction`: the scope filter's subquery uses it
    return (
        select(
            Case.id,
            Case.created_at,
            first_channel.label("channel"),
            func.split_part(place.path, "/", 2).label("district"),
            Case.jurisdiction_code,
            Case.categories,
            Case.risk_level,
            Case.state,
            Case.emergency,
            Case.mandatory,
            shares.label("shares"),
            Case.updated_at,
        )
        .outerjoin(place, place.code == Case.jurisdiction_code)
        .where(
            Case.created_at >= period.start, Case.created_at < period.end, case_filter(principal)
        )
        .order_by(Case.id)
    )


class _Labels:
    """Every label table once per export, not once per row."""

    def __init__(self) -> None:
        self.places = jurisdiction_labels()
        self.categories = category_labels()
        self.departments = department_labels()
        self.levels = dict(LEVEL_LABELS)

    def row(self, r: Any) -> list[Any]:
        shares = []
        for pair in (r.shares or "").split(";"):
            if pair:
                dept, _, status = pair.partition(":")
                shares.append(
                    f"{self.departments.get(dept, dept)}:{STATUS_LABELS.get(status, status)}"
                )
        return [
            r.id,
            local(r.created_at),
            CHANNEL_LABELS.get(r.channel, r.channel or ""),
            self.places.get(r.district, r.district or ""),
            self.places.get(r.jurisdiction_code, r.jurisdiction_code or "未定辖区"),
            "、".join(self.categories.get(c, c) for c in r.categories),
            self.levels.get(r.risk_level, "未评估") if r.risk_level else "未评估",
            STATE_LABELS.get(r.state, r.state),
            "是" if r.emergency else "否",
            "是" if r.mandatory else "否",
            "；".join(shares),
            local(r.updated_at),
        ]


async def _batches(
    session: AsyncSession, principal: Principal, period: Period
) -> AsyncIterator[list[list[Any]]]:
    labels = _Labels()
    result = await session.stream(_rows_query(principal, period).execution_options(yield_per=BATCH))
    async for partition in result.partitions(BATCH):
        yield [labels.row(r) for r in partition]


def _asked_quarter(quarter: Annotated[str, Query(max_length=6)] = "") -> Period:
    """The quarter of `?quarter=2026Q3`, the current one without it."""
    return periods.quarter(quarter or periods.current_quarter())


Quarter = Annotated[Period, Depends(_asked_quarter)]


async def _audit_export(request: Request, user: ConsoleUser, period: Period, fmt: str) -> None:
    async with sessions(request)() as session, session.begin():
        audit(
            session,
            user.principal,
            "report.export",
            "case",
            None,
            request,
            {"period": period.quarter or period.label, "format": fmt},
        )


def _disposition(period: Period, ext: str) -> dict[str, str]:
    name = f"quarterly-{period.quarter or period.start.date().isoformat()}.{ext}"
    return {"Content-Disposition": f'attachment; filename="{name}"'}


def _csv_line(values: list[Any]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(xlsx.csv_row(values))
    return out.getvalue()


@router.get("/quarterly.csv")
async def quarterly_csv(
    request: Request, user: Annotated[ConsoleUser, Depends(SUPERVISOR)], period: Quarter
) -> StreamingResponse:
    await _audit_export(request, user, period, "csv")

    async def body() -> AsyncIterator[bytes]:
        # The BOM lets Excel open the UTF-8 file with its Chinese intact.
        yield ("\ufeff" + _csv_line(HEADER)).encode()
        async with sessions(request)() as session, session.begin():
            async for batch in _batches(session, user.principal, period):
                out = io.StringIO()
                csv.writer(out).writerows(xlsx.csv_row(row) for row in batch)
                yield out.getvalue().encode()

    return StreamingResponse(
        body(), media_type="text/csv; charset=utf-8", headers=_disposition(period, "csv")
    )


def _summary_sheet(book: Workbook, data) -> None:
    sheet = book.create_sheet("汇总")
    sheet.append([f"{data.period.label}（{_span(data.period)}）"])
    sheet.append(["案件总数", data.cases])
    for breakdown in data.breakdowns:
        sheet.append([])
        sheet.append([f"按{breakdown.title}", "案件数"])
        for row in breakdown.rows:
            sheet.append([row.label, row.count])
    sheet.append([])
    sheet.append(["转介部门", "转介数", *STATUS_LABELS.values()])
    for dept in data.departments:
        sheet.append(
            [dept.department, dept.total, *(dept.by_status.get(s, 0) for s in STATUS_LABELS)]
        )


def _span(period: Period) -> str:
    return f"{period.start.date().isoformat()} 至 {period.last_day.isoformat()}"


def _file_chunks(path: str) -> Iterator[bytes]:
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(256 * 1024):
                yield chunk
    finally:
        os.unlink(path)


@router.get("/quarterly.xlsx")
async def quarterly_xlsx(
    request: Request, user: Annotated[ConsoleUser, Depends(SUPERVISOR)], period: Quarter
) -> StreamingResponse:
    await _audit_export(request, user, period, "xlsx")
    book = Workbook(write_only=True)
    fd, path = tempfile.mkstemp(prefix="hotline-quarterly-", suffix=".xlsx")
    os.close(fd)
    try:
        async with sessions(request)() as session, session.begin():
            _summary_sheet(book, await figures(session, user.principal, period))
            detail = book.create_sheet("案件明细")
            detail.append(HEADER)
            async for batch in _batches(session, user.principal, period):
                await asyncio.to_thread(_append_all, detail, batch)
        await asyncio.to_thread(book.save, path)
    except BaseException:
        os.unlink(path)
        raise
    return StreamingResponse(
        _file_chunks(path),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers=_disposition(period, "xlsx"),
    )


def _append_all(sheet, rows: list[list[Any]]) -> None:
    for row in rows:
        xlsx.append(sheet, row)
