"""One child's file as an XLSX workbook, for a case conference: the record, guardians,
cases, and the timeline. Built in memory (a file is small); IDs and phones stay masked."""

from io import BytesIO

from openpyxl import Workbook
from openpyxl.styles import Font

from dispatch import xlsx
from dispatch.children.records import ChildOut, TimelineOut
from workflows.reference import category_labels, gender_labels, jurisdiction_labels

KINDS = {"child": "档案", "case": "案件", "report": "报告", "visit": "回访"}


def _sheet(book: Workbook, title: str, header: list[str], rows: list[list]) -> None:
    sheet = book.create_sheet(title)
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for values in rows:
        xlsx.append(sheet, ["" if v is None else v for v in values])
    for column, width in zip("ABCDEFGH", (14, 18, 14, 16, 40, 30, 16, 16), strict=False):
        sheet.column_dimensions[column].width = width


def workbook(view: ChildOut, items: list[TimelineOut]) -> bytes:
    categories, places, genders = category_labels(), jurisdiction_labels(), gender_labels()
    book = Workbook()
    book.remove(book.active)
    _sheet(book, "基本信息", ["项目", "内容"], [
        ["档案编号", view.id], ["姓名", view.name], ["拼音", view.name_pinyin],
        ["性别", genders.get(view.gender or "", view.gender)],
        ["出生日期", view.birth_date.isoformat() if view.birth_date else None],
        ["年龄", view.age], ["身份证号", view.id_number], ["户籍地", view.hukou],
        ["现住址", view.address], ["辖区", places.get(view.jurisdiction or "", view.jurisdiction)],
        ["学校", view.school], ["班级", view.school_class],
        ["困境类型", "、".join(categories.get(c, c) for c in view.categories)],
        ["风险等级", view.risk_level],
    ])
    _sheet(book, "监护人", ["关系", "姓名", "电话", "监护状况"],
           [[g.relation, g.name, g.phone, g.state_label] for g in view.guardians])
    _sheet(book, "案件", ["案件编号", "状态", "受理时间", "风险等级", "困境类型", "辖区"], [
        [c.case_id, c.state, c.created_at.strftime("%Y-%m-%d %H:%M"), c.risk_level,
         "、".join(categories.get(x, x) for x in c.categories),
         places.get(c.jurisdiction or "", c.jurisdiction)]
        for c in view.cases
    ])
    _sheet(book, "时间线", ["时间", "类别", "案件", "事件", "内容", "操作人"], [
        [i.at.strftime("%Y-%m-%d %H:%M"), KINDS.get(i.kind, i.kind), i.case_id, i.event,
         i.text, i.actor]
        for i in items
    ])
    out = BytesIO()
    book.save(out)
    return out.getvalue()
