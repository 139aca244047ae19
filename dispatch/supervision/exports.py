"""The scorecard and the periodic reports as files: XLSX (openpyxl) and PDF (reportlab).

reportlab is chosen for the PDF because it is pure Python, long maintained, draws charts
itself (`reportlab.graphics`) and ships the Adobe CID font STSong-Light, so Chinese prints
with no system font and no browser. Both builders are plain functions over the service's
results (CPU only): callers run them in a worker thread.
"""

import io
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from reportlab.graphics.charts.barcharts import HorizontalBarChart
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from dispatch import xlsx
from dispatch.console.timefmt import local
from workflows.referrals.workflow import STATUS_LABELS

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))

SCORECARD_HEADER = [
    "排名",
    "部门",
    "办理机构",
    "接收转介",
    "已认领",
    "按时认领",
    "按时认领率",
    "按时处置",
    "按时处置率",
    "认领用时中位数（分钟）",
    "认领用时P90（分钟）",
    "首次处置用时中位数（分钟）",
    "首次处置用时P90（分钟）",
    "督办",
    "挂牌督办",
    "其中人工督查",
    "退回",
    "当前超时",
    "综合得分",
    "接收较上期",
]


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _number(value: Any) -> Any:
    return "—" if value is None else value


def _signed(value: Any) -> str:
    if value is None:
        return "—"
    return f"+{value:g}" if value > 0 else f"{value:g}"


def scorecard_row(item: dict[str, Any]) -> list[Any]:
    return [
        _number(item.get("rank")),
        item["department_name"],
        item["office"] or "（全部门）",
        item["received"],
        item["claimed"],
        item["claimed_on_time"],
        percent(item["claimed_on_time_rate"]),
        item["acted_on_time"],
        percent(item["acted_on_time_rate"]),
        _number(item["median_minutes_to_claim"]),
        _number(item["p90_minutes_to_claim"]),
        _number(item["median_minutes_to_action"]),
        _number(item["p90_minutes_to_action"]),
        item["escalated"],
        item["flagged"],
        item["flagged_by_hand"],
        item["returned"],
        item["overdue"],
        _number(item.get("score")),
        _signed(item.get("trend", {}).get("received")),
    ]


def _span(card) -> str:
    return f"{local(card.start, '%Y-%m-%d')} 至 {local(card.end, '%Y-%m-%d')}（不含）"


def _book_bytes(book: Workbook) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _title(sheet, text: str) -> None:
    xlsx.append(sheet, [text])
    sheet["A1"].font = Font(bold=True, size=14)


def scorecard_xlsx(card) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "部门考核"
    _title(sheet, f"部门办理情况考核表 {_span(card)}")
    xlsx.append(sheet, SCORECARD_HEADER)
    for cell in sheet[2]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True)
    for item in card.items:
        xlsx.append(sheet, scorecard_row(item))
    xlsx.append(sheet, ["", "合计", "", *scorecard_row(card.total)[3:]])
    reasons = book.create_sheet("退回原因")
    xlsx.append(reasons, ["部门", "办理机构", "退回原因", "次数"])
    for item in card.items:
        for r in item["return_reasons"]:
            xlsx.append(
                reasons, [item["department_name"], item["office"] or "", r["reason"], r["count"]]
            )
    outcomes = book.create_sheet("办理状态")
    xlsx.append(outcomes, ["部门", "办理机构", *STATUS_LABELS.values()])
    for item in card.items:
        xlsx.append(outcomes, 
            [
                item["department_name"],
                item["office"] or "",
                *(item["outcomes"].get(s, 0) for s in STATUS_LABELS),
            ]
        )
    return _book_bytes(book)


# --- PDF ---------------------------------------------------------------------------------

_STYLES = {
    "title": ParagraphStyle("title", fontName=FONT, fontSize=16, leading=22, spaceAfter=6),
    "h2": ParagraphStyle("h2", fontName=FONT, fontSize=12, leading=18, spaceBefore=8),
    "body": ParagraphStyle("body", fontName=FONT, fontSize=9, leading=14),
    "cell": ParagraphStyle("cell", fontName=FONT, fontSize=7, leading=9),
}


def _p(text: Any, style: str = "body") -> Paragraph:
    """A paragraph of plain text: people's words may hold '<' or '&'."""
    return Paragraph(escape(str(text)), _STYLES[style])


def bar_chart(
    labels: Sequence[str],
    series: Sequence[Sequence[float]],
    names: Sequence[str],
    width: float,
    *,
    percent_axis: bool = False,
    max_height: float = 440,
) -> Drawing:
    """Horizontal bars, one group per label, drawn into the PDF (no browser, no image);
    never taller than `max_height`, so a long list of offices still fits on a page."""
    rows = max(len(labels), 1)
    height = min(30 + rows * 14 * max(len(series), 1), max_height)
    drawing = Drawing(width, height)
    chart = HorizontalBarChart()
    chart.x, chart.y = 110, 20
    chart.width, chart.height = width - 130, height - 30
    chart.data = [list(s) or [0] for s in series]
    chart.categoryAxis.categoryNames = list(labels) or [""]
    chart.categoryAxis.labels.fontName = FONT
    chart.categoryAxis.labels.fontSize = 7
    chart.valueAxis.labels.fontName = FONT
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = 0
    if percent_axis:
        chart.valueAxis.valueMax = 100
        chart.valueAxis.valueStep = 20
    palette = [colors.HexColor("#2f6fb0"), colors.HexColor("#e39b2d"), colors.HexColor("#b03a2e")]
    for index in range(len(series)):
        chart.bars[index].fillColor = palette[index % len(palette)]
    drawing.add(chart)
    for index, name in enumerate(names):
        x = 110 + index * 90
        drawing.add(String(x + 12, 4, name, fontName=FONT, fontSize=7))
        drawing.add(
            String(x, 4, "■", fontName=FONT, fontSize=8, fillColor=palette[index % len(palette)])
        )
    return drawing


def _table(rows: list[list[Any]], widths: Sequence[float] | None = None) -> Table:
    cells = [[_p(v, "cell") for v in row] for row in rows]
    table = Table(cells, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    return table


def _pdf(story: list, *, wide: bool = False) -> bytes:
    out = io.BytesIO()
    size = landscape(A4) if wide else A4
    doc = SimpleDocTemplate(
        out,
        pagesize=size,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title="未保热线",
    )
    doc.build(story)
    return out.getvalue()


def _office_label(item: dict[str, Any]) -> str:
    return f"{item['department_name']} {item['office'] or ''}".strip()[:18]


def scorecard_pdf(card) -> bytes:
    width = landscape(A4)[0] - 24 * mm - 12  # the frame's own padding
    items = card.items[:30]
    story: list = [
        _p(f"部门办理情况考核通报 {_span(card)}", "title"),
        Paragraph(
            f"接收转介 {card.total['received']} 件，按时认领率 "
            f"{percent(card.total['claimed_on_time_rate'])}，按时处置率 "
            f"{percent(card.total['acted_on_time_rate'])}，督办 {card.total['escalated']} 件，"
            f"挂牌督办 {card.total['flagged']} 件，当前超时 {card.total['overdue']} 件。",
            _STYLES["body"],
        ),
        _p("按时认领率与按时处置率（%）", "h2"),
        bar_chart(
            [_office_label(i) for i in reversed(items)],
            [
                [round((i["claimed_on_time_rate"] or 0) * 100, 1) for i in reversed(items)],
                [round((i["acted_on_time_rate"] or 0) * 100, 1) for i in reversed(items)],
            ],
            ["按时认领率", "按时处置率"],
            width,
            percent_axis=True,
        ),
        _p("排名表", "h2"),
        _table([SCORECARD_HEADER] + [scorecard_row(i) for i in card.items]),
    ]
    return _pdf(story, wide=True)


def report_rows(figures: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    return [(b["title"], b["rows"]) for b in figures.get("breakdowns", [])]


def report_xlsx(report, figures: dict[str, Any], district_name: str, label: str) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "报告"
    _title(sheet, f"{district_name} {label}未成年人保护工作报告")
    xlsx.append(sheet, ["状态", report.status if report else "未编写"])
    xlsx.append(sheet, ["受理案件", figures.get("cases", 0)])
    xlsx.append(sheet, [])
    xlsx.append(sheet, ["指标", "分子", "分母", "比率"])
    for r in figures.get("rates", []):
        xlsx.append(sheet, [r["label"], r["numerator"], r["denominator"], percent(r["value"])])
    for title, rows in report_rows(figures):
        xlsx.append(sheet, [])
        xlsx.append(sheet, [f"按{title}", "案件数"])
        for row in rows:
            xlsx.append(sheet, [row["label"], row["count"]])
    text = book.create_sheet("工作情况与典型案例")
    text.append(["工作情况"])
    text.append([report.narrative if report else ""])
    text.append([])
    text.append(["典型案例", "内容"])
    for case in report.typical_cases if report else []:
        text.append([case["title"], case["text"]])
    return _book_bytes(book)


def report_pdf(report, figures: dict[str, Any], district_name: str, label: str) -> bytes:
    width = A4[0] - 24 * mm - 12
    story: list = [
        _p(f"{district_name} {label}未成年人保护工作报告", "title"),
        _p(f"受理案件 {figures.get('cases', 0)} 件。", "body"),
        _p("主要指标", "h2"),
        _table(
            [["指标", "分子", "分母", "比率"]]
            + [
                [r["label"], r["numerator"], r["denominator"], percent(r["value"])]
                for r in figures.get("rates", [])
            ]
        ),
    ]
    for title, rows in report_rows(figures):
        story.append(_p(f"按{title}", "h2"))
        if rows:
            top = rows[:12]
            story.append(
                bar_chart(
                    [r["label"][:14] for r in reversed(top)],
                    [[r["count"] for r in reversed(top)]],
                    ["案件数"],
                    width,
                )
            )
        else:
            story.append(_p("无数据", "body"))
    story += [
        _p("工作情况", "h2"),
        _p((report.narrative if report else "") or "（未填写）", "body"),
    ]
    for case in report.typical_cases if report else []:
        story += [_p(f"典型案例：{case['title']}", "h2"), _p(case["text"], "body")]
    story.append(Spacer(1, 6 * mm))
    return _pdf(story)
