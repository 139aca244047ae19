"""Console pages of the child file: the file page (record, guardians, siblings, cases, one
timeline, export, merge), linking from the case page, and the ledger import with its dry run.

They call the API's own functions (dispatch.children.api), so a page sees and writes exactly
what the API would for this person, audited the same way.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from channels.errors import ApiError
from dispatch.children import api
from dispatch.children.records import GUARDIAN_STATES
from dispatch.console.sessions import check_csrf
from dispatch.console.web import (
    ConsoleRoute,
    ConsoleUser,
    act,
    read_form,
    render,
    staff,
    text_field,
)
from dispatch.staff import permissions
from workflows.reference import category_labels, gender_labels, jurisdictions

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

READERS = staff(permissions.CASE_READ)
CENTER_DESK = staff(permissions.CASE_DESK)
CASEWORK = staff(permissions.CASEWORK)


async def _page(request: Request, user: ConsoleUser, child_id: int, *, reveal: bool = False,
                report: dict | None = None) -> HTMLResponse:
    principal = user.principal
    child = await api.get_child(request, child_id, principal, reveal)
    timeline = await api.get_timeline(request, child_id, principal)
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
async def import_page(request: Request, user: Annotated[ConsoleUser, Depends(CASEWORK)]):
    return render(request, user, "child_import.html", {
        "report": None, "error": None,
        "jurisdictions": [(c, n, lvl) for c, n, lvl, _ in jurisdictions()]})


@router.post("/children/import", response_class=HTMLResponse)
async def import_upload(request: Request, user: Annotated[ConsoleUser, Depends(CASEWORK)]):
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
    except ApiError as exc:
        context["error"] = exc.message
        return render(request, user, "child_import.html", context, status=exc.status)
    context["report"] = report.as_dict()
    return render(request, user, "child_import.html", context)


@router.get("/children/{child_id}", response_class=HTMLResponse)
async def child_page(request: Request, child_id: int,
                     user: Annotated[ConsoleUser, Depends(READERS)]):
    return await _page(request, user, child_id)


@router.post("/children/{child_id}/reveal", response_class=HTMLResponse)
async def reveal(request: Request, child_id: int,
                 user: Annotated[ConsoleUser, Depends(CENTER_DESK)]):
    await read_form(request, user)
    return await _page(request, user, child_id, reveal=True)


@router.get("/children/{child_id}/export")
async def export(request: Request, child_id: int,
                 user: Annotated[ConsoleUser, Depends(CENTER_DESK)]) -> Response:
    return await api.export_child(request, child_id, user.principal)


def _back(child_id: int) -> str:
    return f"/console/children/{child_id}"


@router.post("/children/{child_id}/edit")
async def edit(request: Request, child_id: int,
               user: Annotated[ConsoleUser, Depends(CENTER_DESK)]) -> RedirectResponse:
    form = await read_form(request, user)

    async def run() -> None:
        given = {name: text_field(form, name, 200) for name in (
            "name", "gender", "birth_date", "age", "id_number", "hukou", "address",
            "jurisdiction", "school", "school_class")}
        fields = {k: v for k, v in given.items() if v}
        fields["categories"] = [str(c) for c in form.getlist("categories")] or None
        body = api.ChildEditIn(**{k: v for k, v in fields.items() if v is not None},
                               reason=text_field(form, "reason", 2000))
        await api.edit_child(request, child_id, body, user.principal)

    return await act(request, user, _back(child_id), run, "已更新儿童档案")


@router.post("/children/{child_id}/guardians")
async def guardian(request: Request, child_id: int,
                   user: Annotated[ConsoleUser, Depends(CENTER_DESK)]) -> RedirectResponse:
    form = await read_form(request, user)

    async def run() -> None:
        body = api.GuardianIn(relation=text_field(form, "relation", 20),
                              name=text_field(form, "name", 100) or None,
                              phone=text_field(form, "phone", 32) or None,
                              state=text_field(form, "state", 20) or "present")
        await api.add_guardian(request, child_id, body, user.principal)

    return await act(request, user, _back(child_id), run, "已添加监护人")


@router.post("/children/{child_id}/siblings")
async def sibling(request: Request, child_id: int,
                  user: Annotated[ConsoleUser, Depends(CENTER_DESK)]) -> RedirectResponse:
    form = await read_form(request, user)
    other = text_field(form, "sibling_id", 12)

    async def run() -> None:
        if not other.isdigit():
            raise ApiError(422, "sibling_required", "请填写兄弟姐妹的儿童档案编号")
        body = api.SiblingIn(sibling_id=int(other), reason=text_field(form, "reason", 2000))
        await api.link_sibling(request, child_id, body, user.principal)

    return await act(request, user, _back(child_id), run, "已登记兄弟姐妹")


@router.post("/children/{child_id}/siblings/{sibling_id}/unlink")
async def sibling_unlink(request: Request, child_id: int, sibling_id: int,
                         user: Annotated[ConsoleUser, Depends(CENTER_DESK)]) -> RedirectResponse:
    form = await read_form(request, user)

    async def run() -> None:
        body = api.ReasonIn(reason=text_field(form, "reason", 2000))
        await api.unlink_sibling(request, child_id, sibling_id, body, user.principal)

    return await act(request, user, _back(child_id), run, "已取消兄弟姐妹登记")


@router.post("/children/{child_id}/merge")
async def merge(request: Request, child_id: int,
                user: Annotated[ConsoleUser, Depends(CASEWORK)]) -> RedirectResponse:
    form = await read_form(request, user)
    into = text_field(form, "into_child_id", 12)

    async def run() -> None:
        if not into.isdigit():
            raise ApiError(422, "into_child_required", "请填写保留的儿童档案编号")
        body = api.MergeIn(into_child_id=int(into), reason=text_field(form, "reason", 2000))
        await api.merge_child(request, child_id, body, user.principal)

    back = _back(int(into)) if into.isdigit() else _back(child_id)
    return await act(request, user, back, run, "档案已合并")


@router.post("/cases/{case_id}/children")
async def link(request: Request, case_id: int,
               user: Annotated[ConsoleUser, Depends(CENTER_DESK)]) -> RedirectResponse:
    """From the case page: link a proposed record, or open a new one from the report."""
    form = await read_form(request, user)
    chosen = text_field(form, "child_id", 12)

    async def run() -> None:
        body = api.LinkIn(child_id=int(chosen) if chosen.isdigit() else None,
                          reason=text_field(form, "reason", 2000) or None)
        await api.link_child(request, case_id, body, user.principal)

    return await act(request, user, f"/console/cases/{case_id}", run,
                     "已关联儿童档案" if chosen else "已建立儿童档案")


@router.post("/cases/{case_id}/children/{child_id}/unlink")
async def unlink(request: Request, case_id: int, child_id: int,
                 user: Annotated[ConsoleUser, Depends(CENTER_DESK)]) -> RedirectResponse:
    form = await read_form(request, user)

    async def run() -> None:
        body = api.ReasonIn(reason=text_field(form, "reason", 2000))
        await api.unlink_child(request, case_id, child_id, body, user.principal)

    return await act(request, user, f"/console/cases/{case_id}", run, "已取消关联")
