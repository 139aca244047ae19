"""The case page offers only the workflow buttons this person may press: 不予受理 of a
mandatory report is a supervisor's (the workflow refuses anyone else)."""

import secrets

pytest_plugins = ("tests.fixtures.console",)

INVALIDATE = 'name="do" value="invalidate"'


async def test_only_a_supervisor_is_offered_not_accepting_a_mandatory_report(
    new_case, make_user, console_client
):
    mandatory = await new_case(situations=[4])  # a teacher's report of situation 4
    ordinary = await new_case(situations=[], categories=["dropout"],
                              description=f"学生已两周未到校，家长称孩子不想读书了。{secrets.token_hex(4)}")
    operator = await console_client(await make_user("operator"))
    supervisor = await console_client(await make_user("supervisor", jurisdiction="990100"))

    assert INVALIDATE not in (await operator.get(f"/console/cases/{mandatory}")).text
    assert INVALIDATE in (await supervisor.get(f"/console/cases/{mandatory}")).text
    assert INVALIDATE in (await operator.get(f"/console/cases/{ordinary}")).text
