"""Console pages of the child file: the file page (record, guardians, siblings, cases, one
timeline, export, merge), linking from the case page, and the ledger import with its dry run.

They run the API's own operations (dispatch.children.file_service), so a page sees and
writes exactly what the API would for this person, audited the same way.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from channels.web import in_transaction
from dispatch import xlsx
from dispatch.children import file_service as files
from dispatch.children.records import GUARDIAN_STATES
from dispatch.console.sessions import check_csrf
from dispatch.console.web import (
    ConsoleRoute,
    ConsoleUser,
    read_form,
    render,
    staff,
    submit,
    text_field,
)
from dispatch.staff import permissions
from workflows.errors import DomainError, Invalid
from workflows.reference import category_labels, gender_labels, jurisdictions

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

Readers = Annotated[ConsoleUser, Depends(staff(permissions.CASE_READ))]
CenterDesk = Annotated[ConsoleUser, Depends(staff(permissions.CASE_DESK))]
Casework = Annotated[ConsoleUser, Depends(staff(permissions.CASEWORK))]


async def _page(request: Request, user: ConsoleUser, child_id: int, *, reveal: bool = False,
                report: dict | None = None) -> HTMLResponse:
    principal = user.principal
    child = await in_transaction(
        request, files.read_child, principal=principal, child_id=child_id, reveal=reveal
    )
    timeline = await in_transaction(
        request, files.read_timeline, principal=principal, child_id=child_id
    )
    return render(request, user, "child.html", {
        "child": child,
        "timeline": timeline.items,
        "reveal": reveal,
        "can_edit": principal.is_center,
        "can_merge": principal.is_center and principal.role in ("caseworker", "supervisor"),
        "guardian_states": GUARDIAN_STATES,
        "genders": gender_labels(),
        "category_choices": category_labels(),
        "jurisdictions": [(c, n, lvl) for c, n, lvl, _ in jurisdictions()],
    })


@router.get("/children/import", response_class=HTMLResponse)
async def import_page(request: Request, user: Casework):
    return render(request, user, "child_import.html", {
        "report": None, "error": None,
        "jurisdictions": [(c, n, lvl) for c, n, lvl, _ in jurisdictions()]})


@router.post("/children/import", response_class=HTMLResponse)
async def import_upload(request: Request, user: Casework):
    """Upload a ledger: by default a dry run that reports and writes nothing."""
    form = await request.form(max_files=1, max_fields=20)
    check_csrf(user.session, form)
    upload = form.get("file")
    context = {"jurisdictions": [(c, n, lvl) for c, n, lvl, _ in jurisdictions()],
               "report": None, "error": None}
    if upload is None or isinstance(upload, str) or not upload.filename:
        context["error"] = "请选择要导入的台账文件（.xlsx 或 .csv）"
        return render(request, user, "child_import.html", context, status=422)
    kind = "canvass" if form.get("kind") == "canvass" else "ledger"
    try:
        from channels.web import sessions
        from dispatch.children import ledger

        report = await ledger.import_file(
            sessions(request), user.principal, upload.filename, await upload.read(),
            kind=kind, dry_run=form.get("apply") != "yes",
            jurisdiction=text_field(form, "jurisdiction", 32) or None, request=request)
    except DomainError as exc:  # a refused file (ledger) or row (the child file)
        context["error"] = exc.message
        return render(request, user, "child_import.html", context, status=exc.status)
    context["report"] = report.as_dict()
    return render(request, user, "child_import.html", context)


@router.get("/children/{child_id}", response_class=HTMLResponse)
async def child_page(request: Request, child_id: int, user: Readers):
    return await _page(request, user, child_id)


@router.post("/children/{child_id}/reveal", response_class=HTMLResponse)
async def reveal(request: Request, child_id: int, user: CenterDesk):
    await read_form(request, user)
    return await _page(request, user, child_id, reveal=True)


@router.get("/children/{child_id}/export")
async def export(request: Request, child_id: int, user: CenterDesk) -> Response:
    book = await in_transaction(
        request, files.export_child, principal=user.principal, child_id=child_id
    )
    return xlsx.download(book.content, book.name)


def _back(child_id: int) -> str:
    return f"/console/children/{child_id}"


def _reason(form: FormData) -> dict:
    return {"body": files.ReasonIn(reason=text_field(form, "reason", 2000))}


@router.post("/children/{child_id}/edit")
async def edit(request: Request, child_id: int, user: CenterDesk) -> RedirectResponse:
    def body(form: FormData) -> dict:
        given = {name: text_field(form, name, 200) for name in (
            "name", "gender", "birth_date", "age", "id_number", "hukou", "address",
            "jurisdiction", "school", "school_class")}
        fields = {k: v for k, v in given.items() if v}
        fields["categories"] = [str(c) for c in form.getlist("categories")] or None
        return {"body": files.ChildEditIn(**{k: v for k, v in fields.items() if v is not None},
                                          reason=text_field(form, "reason", 2000))}

    return await submit(request, user, _back(child_id), files.edit_child, "已更新儿童档案",
                        body, child_id=child_id)


@router.post("/children/{child_id}/guardians")
async def guardian(request: Request, child_id: int, user: CenterDesk) -> RedirectResponse:
    def body(form: FormData) -> dict:
        return {"body": files.GuardianIn(relation=text_field(form, "relation", 20),
                                         name=text_field(form, "name", 100) or None,
                                         phone=text_field(form, "phone", 32) or None,
                                         state=text_field(form, "state", 20) or "present")}

    return await submit(request, user, _back(child_id), files.add_guardian, "已添加监护人",
                        body, child_id=child_id)


@router.post("/children/{child_id}/siblings")
async def sibling(request: Request, child_id: int, user: CenterDesk) -> RedirectResponse:
    def body(form: FormData) -> dict:
        other = text_field(form, "sibling_id", 12)
        if not other.isdigit():
            raise Invalid("sibling_required", "请填写兄弟姐妹的儿童档案编号")
        return {"body": files.SiblingIn(sibling_id=int(other),
                                        reason=text_field(form, "reason", 2000))}

    return await submit(request, user, _back(child_id), files.link_sibling, "已登记兄弟姐妹",
                        body, child_id=child_id)


@router.post("/children/{child_id}/siblings/{sibling_id}/unlink")
async def sibling_unlink(request: Request, child_id: int, sibling_id: int,
                         user: CenterDesk) -> RedirectResponse:
    return await submit(request, user, _back(child_id), files.unlink_sibling,
                        "已取消兄弟姐妹登记", _reason, child_id=child_id, sibling_id=sibling_id)


@router.post("/children/{child_id}/merge")
async def merge(request: Request, child_id: int, user: Casework) -> RedirectResponse:
    into = text_field(await read_form(request, user), "into_child_id", 12)

    def body(form: FormData) -> dict:
        if not into.isdigit():
            raise Invalid("into_child_required", "请填写保留的儿童档案编号")
        return {"body": files.MergeIn(into_child_id=int(into),
                                      reason=text_field(form, "reason", 2000))}

    back = _back(int(into)) if into.isdigit() else _back(child_id)
    return await submit(request, user, back, files.merge_child, "档案已合并", body,
                        child_id=child_id)


@router.post("/cases/{case_id}/children")
async def link(request: Request, case_id: int, user: CenterDesk) -> RedirectResponse:
    """From the case page: link a proposed record, or open a new one from the report."""
    chosen = text_field(await read_form(request, user), "child_id", 12)

    def body(form: FormData) -> dict:
        return {"body": files.LinkIn(child_id=int(chosen) if chosen.isdigit() else None,
                                     reason=text_field(form, "reason", 2000) or None)}

    return await submit(request, user, f"/console/cases/{case_id}", files.link_child,
                        "已关联儿童档案" if chosen else "已建立儿童档案", body, case_id=case_id)


@router.post("/cases/{case_id}/children/{child_id}/unlink")
async def unlink(request: Request, case_id: int, child_id: int,
                 user: CenterDesk) -> RedirectResponse:
    return await submit(request, user, f"/console/cases/{case_id}", files.unlink_child,
                        "已取消关联", _reason, case_id=case_id, child_id=child_id)
