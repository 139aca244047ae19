"""Fixtures for the Twilio channels' tests (load with `pytest_plugins`): the app configured
for Twilio against a fake API, a job runner using the app's current settings, and the
channels' clock held still."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from channels import clock
from channels.sms_outbound import SENDABLE
from db.models_telephony import SmsMessage
from db.settings import Settings
from tests.twilio_fake import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, Clock, FakeTwilio


@dataclass
class TwilioSetup:
    fake: FakeTwilio
    settings: Settings


@pytest.fixture
async def twilio(app, settings) -> AsyncIterator[TwilioSetup]:
    """The app configured for Twilio (auth token, account, sender, the fake API), restored
    afterwards. The conftest `pump` keeps the unconfigured session settings: use `run_jobs`,
    which reads the app's settings at each call. A test must leave no reply unsettled, or
    it would be sent during some later test."""
    fake = FakeTwilio()
    fake.start()
    configured = settings.model_copy(
        update={
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": AUTH_TOKEN,
            "twilio_from_number": FROM_NUMBER,
            "twilio_api_base_url": fake.url,
        }
    )
    runtime = app.state.runtime
    before = runtime.settings
    runtime.settings = configured
    try:
        yield TwilioSetup(fake, configured)
    finally:
        runtime.settings = before
        fake.stop()
    async with runtime.sessions() as session:
        unsettled = await session.scalar(
            select(func.count()).where(
                SmsMessage.direction == "out", SmsMessage.status.in_(SENDABLE)
            )
        )
    assert unsettled == 0, "the test left SMS replies unsent"


@pytest.fixture
def run_jobs(pump):
    """The conftest's pump: it runs jobs with the app's current settings."""
    return pump


@pytest.fixture
def frozen_clock(monkeypatch) -> Clock:
    """The channels' clock, held still at the real time and moved only by the test."""
    held = Clock(datetime.now(UTC).replace(microsecond=0))
    monkeypatch.setattr(clock, "now", held.now)
    return held
