"""The HTML form at /report as a reporter on a phone uses it (no JavaScript)."""

import re

from sqlalchemy import select

from db.models import Case, Report
from tests.fixtures.apps import csrf_token, open_form, webform_data
from workflows.cases import receipts


async def test_form_is_chinese_mobile_ready_and_lists_choices(client):
    html = await open_form(client)
    assert 'lang="zh-CN"' in html and 'name="viewport"' in html
    # Works without JavaScript: the one script is the optional proof of work, from a file.
    assert re.findall(r"<script[^>]*>", html) == [
        '<script src="/static/public/proof.js" defer>']
    assert '<select id="jurisdiction" name="jurisdiction"' in html
    assert 'value="990102001001"' in html
    assert html.count('name="situations"') == 9
    for role in ("teacher", "doctor", "nurse", "social_worker", "community_cadre",
                 "hotel_staff", "other"):
        assert f'value="{role}"' in html
    assert 'name="csrf_token"' in html


async def test_happy_path_gives_a_receipt_and_stores_the_case(client, sessions):
    await open_form(client)
    html = await open_form(client)
    data = webform_data()
    response = await client.post("/report", data={**data, "csrf_token": csrf_token(html)})
    assert response.status_code == 201
    code = re.search(r'id="receipt-code">([^<]+)<', response.text).group(1)
    assert receipts.normalize(code)
    assert "已立即转公安机关" in response.text
    async with sessions() as session:
        report = (await session.execute(
            select(Report).where(Report.receipt_code == receipts.normalize(code)))).scalar_one()
        case = await session.get(Case, report.case_id)
    assert report.channel == "webform"
    assert report.situations == [1, 4]
    assert report.child == {"name": "陈某", "age": 11, "gender": "female", "address": "湖滨村5组"}
    assert case.emergency and case.mandatory and case.categories == ["sexual_abuse"]
    lookup = await client.get(f"/api/v1/receipts/{code}")
    assert lookup.status_code == 200


async def test_errors_are_shown_next_to_fields_with_input_kept(client):
    html = await open_form(client)
    data = webform_data(description="", child_age="20", reporter_phone="12", jurisdiction="nowhere",
                 reporter_name="<b>张</b>")
    response = await client.post("/report", data={**data, "csrf_token": csrf_token(html)})
    assert response.status_code == 422
    page = response.text
    assert 'id="err-description"' in page and "请填写发生了什么" in page
    assert 'id="err-child-age"' in page and "0到17" in page
    assert 'id="err-reporter-phone"' in page
    assert 'id="err-jurisdiction"' in page
    # What the reporter typed is still there (escaped), checkboxes still ticked.
    assert 'value="20"' in page and 'value="12"' in page
    assert "&lt;b&gt;张&lt;/b&gt;" in page and "<b>张</b>" not in page
    assert re.search(r'value="sexual_abuse" checked', page)
    assert re.search(r'value="4" checked', page)
    # Fix the errors and submit the re-shown form: it goes through.
    fixed = webform_data()
    response = await client.post("/report", data={**fixed, "csrf_token": csrf_token(page)})
    assert response.status_code == 201


async def test_form_without_a_valid_csrf_token_is_refused(client, sessions):
    await open_form(client)
    data = webform_data()
    response = await client.post("/report", data={**data, "csrf_token": "forged"})
    assert response.status_code == 400
    assert "页面已过期" in response.text
    assert data["child_name"] in response.text  # input kept for a retry
    client.cookies.clear()
    html = await open_form(client)
    token = csrf_token(html)
    client.cookies.clear()  # the token alone, without its cookie, is not enough
    response = await client.post("/report", data={**data, "csrf_token": token})
    assert response.status_code == 400
    async with sessions() as session:
        stored = (await session.execute(
            select(Report.id).where(Report.description == data["description"]))).first()
    assert stored is None


async def test_double_submit_of_the_form_gives_one_receipt(client):
    html = await open_form(client)
    data = {**webform_data(), "csrf_token": csrf_token(html)}
    first = await client.post("/report", data=data)
    second = await client.post("/report", data=data)
    code = re.compile(r'id="receipt-code">([^<]+)<')
    assert code.search(first.text).group(1) == code.search(second.text).group(1)


async def test_form_posted_as_json_is_unsupported(client):
    response = await client.post("/report", json={"description": "x"})
    assert response.status_code == 415
