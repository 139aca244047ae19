"""The ledger upload page shows a refusal from the import on the form itself, whichever
domain error it is (the child file's services raise `workflows.errors`, not the web layer's
error), with its status."""

from dispatch.children import ledger
from tests.fixtures.console import form_token
from workflows.errors import Conflict, Invalid

pytest_plugins = ("tests.fixtures.console",)


async def test_a_domain_refusal_of_an_import_is_shown_on_the_upload_form(
    console_client, make_user, monkeypatch
):
    worker = await console_client(await make_user("caseworker"))
    token = form_token((await worker.get("/console/children/import")).text)
    for refusal in (Conflict("child_merged", "该档案已合并到其他档案"),
                    Invalid("unknown_category", "困境类型代码无效")):

        async def refuse(*args, refusal=refusal, **kwargs):
            raise refusal

        monkeypatch.setattr(ledger, "import_file", refuse)
        shown = await worker.post("/console/children/import",
                                  data={"csrf_token": token, "kind": "ledger"},
                                  files={"file": ("ledger.csv", "姓名\n张三\n".encode())})
        assert shown.status_code == refusal.status
        assert "导入儿童台账" in shown.text and refusal.message in shown.text
