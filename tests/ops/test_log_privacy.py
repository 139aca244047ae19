"""The logs of a realistic run name nobody: every channel driven with known names and
numbers, the background work run, and the production log output searched for them."""

import json
import logging
import logging.config

import pytest

from db.settings import Settings
from dispatch.ops import logs
from tests.fixtures.partners import order
from tests.fixtures.twilio_fake import ACCOUNT_SID, FROM_NUMBER, mobile, signed

pytest_plugins = ("tests.fixtures.twilio", "tests.fixtures.partners")

REPORTER_PHONE, FORWARD_PHONE = "13912345678", "13987654321"
NAMES = ["钱老师", "周小雨", "吴女士", "郑小龙", "幸福里小区9栋", "和平路88号"]


def forms(phone: str) -> list[str]:
    """The ways a number can be written: E.164, national, without the plus."""
    national = phone.removeprefix("+86")
    return [national, "86" + national, "+86" + national]


@pytest.fixture
def production_logs(tmp_path):
    """This process's logs rendered as in production (JSON) into a file, for one test."""
    path = tmp_path / "hotline.log"
    config = logs.log_config(Settings(hotline_log_format="json"), "test")
    config["handlers"]["stderr"] = {
        "class": "logging.FileHandler",
        "filename": str(path),
        "formatter": "structured",
        "encoding": "utf-8",
    }
    config["loggers"]["hotline"] = {"level": "DEBUG"}  # stricter than production
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    names = list(config["loggers"])
    levels = {name: logging.getLogger(name).level for name in names}
    logging.config.dictConfig(config)
    try:
        yield path
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
            handler.close()
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


async def test_no_phone_number_or_name_in_the_logs_of_every_channel(
    client, twilio, run_jobs, post_forward, partner_server, make_user, production_logs
):
    await run_jobs()  # earlier tests' work is not this test's
    texter, caller = mobile(), mobile()
    # A liaison with a phone: routing notifies them by SMS through Twilio.
    await make_user("liaison", "police", "990102001", phone="+8613700137000")
    await partner_server("12345")

    report = {
        "reporter": {"name": "钱老师", "unit": "东湖第一小学", "role": "teacher",
                     "phone": REPORTER_PHONE},
        "situations": [4],
        "categories": ["domestic_violence"],
        "child": {"name": "周小雨", "age": 9, "gender": "female", "address": "幸福里小区9栋"},
        "jurisdiction": "990102001001",
        "description": "周小雨说妈妈的男朋友打她，住在幸福里小区9栋",
        "in_danger_now": True,
    }
    assert (await client.post("/api/v1/reports", json=report)).status_code == 201
    refused = {**report, "child": {**report["child"], "age": 30}}
    assert (await client.post("/api/v1/reports", json=refused)).status_code == 422

    sms = {"MessageSid": "SM" + "a1" * 16, "AccountSid": ACCOUNT_SID, "From": texter,
           "To": FROM_NUMBER, "Body": "郑小龙在和平路88号被他爸锁在家里两天了", "NumMedia": "0"}
    assert (await signed(client, "/channels/twilio/sms", sms)).status_code == 200

    sid = "CA" + "b2" * 16
    ring = {"CallSid": sid, "AccountSid": ACCOUNT_SID, "From": caller, "To": FROM_NUMBER,
            "CallStatus": "ringing"}
    assert (await signed(client, "/channels/twilio/voice", ring)).status_code == 200
    done = {**ring, "CallStatus": "completed", "CallDuration": "30"}
    assert (await signed(client, "/channels/twilio/voice/status", done)).status_code == 204

    work_order = order(caller_phone=FORWARD_PHONE, caller_name="吴女士",
                       content="吴女士反映郑小龙经常挨打", address="和平路88号")
    assert (await post_forward("12345", work_order)).status_code == 202
    assert (await post_forward("12345", work_order)).status_code == 202  # a retry
    ran = await run_jobs()
    topics = {topic for topic, _ in ran}
    assert {"case.intake", "notify.send", "partner.deliver"} <= topics, topics

    text = production_logs.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in text.splitlines()]
    # The capture works: the SMS webhook's own line is there, masked, with its request id.
    stored = [line for line in lines if line["event"].startswith("sms SM")]
    assert stored and stored[0]["request_id"] and stored[0]["level"] == "info"
    for secret in [*forms(REPORTER_PHONE), *forms(FORWARD_PHONE), *forms(texter),
                   *forms(caller), *forms("+8613700137000"), *NAMES]:
        assert secret not in text, f"{secret} in the logs"
