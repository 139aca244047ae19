"""Case search as the center's operator uses it: what is typed is read as a case number, a
receipt code, a phone number or words, and words are never taken for a number."""

import re
import secrets

from sqlalchemy import select

from db.models_children import CaseChild
from tests.fixtures.children import a_name
from workflows.phones import normalize_phone

pytest_plugins = ("tests.fixtures.console",)



def _words_that_parse_as_a_phone() -> str:
    """Words phonenumbers takes for a valid mobile number (letters as keypad digits), like
    "编号8735a6a3ef": about 1 in 20 of such reference words, unique to this run."""
    while not normalize_phone(words := f"编号{secrets.token_hex(5)}"):
        pass
    return words


def _found(html: str) -> list[int]:
    results = html.split('id="results"')[1]
    return [int(n) for n in re.findall(r'href="/console/cases/(\d+)"', results)]


async def test_words_with_letters_and_digits_are_searched_as_words(
    new_case, make_user, console_client
):
    words = _words_that_parse_as_a_phone()
    case_id = await new_case(description=f"邻居反映孩子常被锁在门外，{words}")
    operator = await console_client(await make_user("operator"))

    by_words = await operator.get("/console/search", params={"q": words})
    assert by_words.status_code == 200
    assert _found(by_words.text) == [case_id]


async def test_a_typed_phone_number_finds_the_reporters_cases(new_case, make_user, console_client):
    phone = f"1390{secrets.randbelow(10**7):07d}"
    case_id = await new_case(
        reporter={"name": "李老师", "role": "teacher", "phone": phone}
    )
    operator = await console_client(await make_user("operator"))

    for typed in (phone, f"{phone[:3]} {phone[3:7]} {phone[7:]}", f"+86-{phone}"):
        found = await operator.get("/console/search", params={"q": typed})
        assert _found(found.text) == [case_id], typed


async def test_a_typed_case_number_finds_the_case(new_case, make_user, console_client):
    case_id = await new_case()
    assert case_id > 2**40  # time-based (0035): 15 digits and more, like a phone's length
    operator = await console_client(await make_user("operator"))
    found = await operator.get("/console/search", params={"q": f" {case_id} "})
    assert _found(found.text) == [case_id]


async def _a_case_about(new_case, name: str, jurisdiction: str) -> int:
    return await new_case(child={"name": name, "age": 9, "gender": "male"},
                          jurisdiction=jurisdiction,
                          description=f"孩子常被锁在门外，邻居很担心。{secrets.token_hex(4)}")


def _files(html: str) -> list[int]:
    if 'id="children"' not in html:
        return []
    table = html.split('id="children"')[1].split("</table>")[0]
    return [int(n) for n in re.findall(r'href="/console/children/(\d+)"', table)]


async def test_two_characters_of_a_childs_name_find_the_case_and_the_file_in_scope_only(
    new_case, make_user, console_client, sessions
):
    """The name is ciphertext at rest: found by the keyed hashes of its character pairs."""
    name, _ = a_name()
    inside = await _a_case_about(new_case, name, "990102001001")
    outside = await _a_case_about(new_case, name, "990103001001")
    async with sessions() as session:  # intake opened each named child's file
        file_id, theirs_id = [await session.scalar(
            select(CaseChild.child_id).where(CaseChild.case_id == c)) for c in (inside, outside)]
    assert file_id and theirs_id and file_id != theirs_id
    district = await console_client(await make_user("operator", jurisdiction="990102"))
    next_door = await console_client(await make_user("operator", jurisdiction="990103"))
    city = await console_client(await make_user("operator"))

    for typed in (name[:2], name[1:], name, f"{name[0]} {name[1:]}"):
        found = await district.get("/console/search", params={"q": typed})
        assert _found(found.text) == [inside], typed
        assert _files(found.text) == [file_id], typed
    theirs = await next_door.get("/console/search", params={"q": name[1:]})
    assert _found(theirs.text) == [outside] and _files(theirs.text) == [theirs_id]
    everyone = await city.get("/console/search", params={"q": name[1:]})
    assert _found(everyone.text) == [outside, inside]
    assert _files(everyone.text) == [theirs_id, file_id]
    other, _ = a_name()
    while other[1:] == name[1:]:
        other, _ = a_name()
    nobody = await city.get("/console/search", params={"q": other[1:]})
    assert _found(nobody.text) == [] and _files(nobody.text) == []


async def test_one_character_is_not_enough_to_search_by_name_and_the_page_says_so(
    new_case, make_user, console_client
):
    name, _ = a_name()
    case_id = await _a_case_about(new_case, name, "990102001001")
    operator = await console_client(await make_user("operator"))

    one = await operator.get("/console/search", params={"q": name[2]})
    assert one.status_code == 200
    assert "儿童姓名至少输入两个字才能检索" in one.text
    assert case_id not in _found(one.text)
    two = await operator.get("/console/search", params={"q": name[1:]})
    assert "至少输入两个字" not in two.text and _found(two.text) == [case_id]
