"""The notification job (`notify.send`): every notification of its row sent once, a failed
one tried again by a later run without the others going out twice, and no SMS twice when
the same row runs twice at once (the reconciler enqueued a slow job again)."""

import asyncio

from sqlalchemy import select

from db.handlers import JobContext
from db.models import Notification, Outbox
from dispatch.worker.jobs import handlers, run_job
from tests.fixtures.twilio_fake import mobile

pytest_plugins = ("tests.fixtures.twilio",)


async def _row(sessions, make_user, texts: list[str]) -> tuple[Outbox, list[int], list[str]]:
    """One notify.send row for three notifications: two users with phones, one without."""
    phones = [mobile(), mobile()]
    users = [
        await make_user("supervisor", phone=phones[0]),
        await make_user("supervisor", phone=phones[1]),
        await make_user("supervisor"),
    ]
    async with sessions() as session, session.begin():
        notes = [
            Notification(user_id=u.id, kind="escalated", text=t)
            for u, t in zip(users, texts, strict=True)
        ]
        session.add_all(notes)
        await session.flush()
        row = Outbox(topic="notify.send", payload={"notification_ids": [n.id for n in notes]})
        session.add(row)
    return row, [n.id for n in notes], phones


async def _notes(sessions, ids: list[int]) -> list[Notification]:
    async with sessions() as session:
        found = await session.execute(
            select(Notification).where(Notification.id.in_(ids)).order_by(Notification.id)
        )
        return list(found.scalars())


async def _done(sessions, row_id: int) -> bool:
    async with sessions() as session:
        return await session.scalar(select(Outbox.done_at).where(Outbox.id == row_id)) is not None


async def test_a_failed_send_is_retried_alone_and_the_others_go_out_once(
    sessions, make_user, twilio
):
    texts = ["案件#1 督办", "案件#2 督办", "案件#3 督办"]
    row, ids, phones = await _row(sessions, make_user, texts)
    context = JobContext(sessions, twilio.settings)
    twilio.fake.script = [(500, {"message": "down", "status": 500})]  # the first SMS fails

    try:
        await run_job(context, handlers(), row.topic, row.payload, row.id)
    except Exception as exc:  # noqa: BLE001 - the job fails, as RQ would record it
        failed = exc
    else:
        failed = None
    assert failed is not None, "a failed SMS must fail the job (it is tried again)"
    first, second, unphoned = await _notes(sessions, ids)
    assert (first.status, first.attempts, first.sent_at) == ("failed", 1, None)
    assert first.error and "down" not in first.error  # the type's name, not the message
    assert (second.status, second.channel, second.attempts) == ("sent", "sms", 1)
    assert second.sent_at is not None
    assert (unphoned.status, unphoned.channel, unphoned.attempts) == ("logged", "log", 1)
    assert not await _done(sessions, row.id)
    assert [r.form["To"] for r in twilio.fake.requests] == phones
    assert [r.form["Body"] for r in twilio.fake.requests] == texts[:2]

    # The retry sends only the one that failed, and the row is done.
    assert await run_job(context, handlers(), row.topic, row.payload, row.id) is True
    first, again, unphoned = await _notes(sessions, ids)
    assert (first.status, first.channel, first.attempts) == ("sent", "sms", 2)
    assert (again.attempts, unphoned.attempts) == (1, 1)
    assert [r.form["To"] for r in twilio.fake.requests] == [*phones, phones[0]]
    assert await _done(sessions, row.id)

    # The same notifications under another row (written twice): nothing goes out again.
    async with sessions() as session, session.begin():
        twin = Outbox(topic="notify.send", payload=row.payload)
        session.add(twin)
    assert await run_job(context, handlers(), twin.topic, twin.payload, twin.id) is True
    assert len(twilio.fake.requests) == 3 and await _done(sessions, twin.id)


async def test_the_same_row_run_twice_at_once_sends_each_sms_once(sessions, make_user, twilio):
    row, ids, phones = await _row(sessions, make_user, ["甲", "乙", "丙"])
    context = JobContext(sessions, twilio.settings)
    table = handlers()
    await asyncio.gather(
        run_job(context, table, row.topic, row.payload, row.id),
        run_job(context, table, row.topic, row.payload, row.id),
    )
    assert sorted(r.form["To"] for r in twilio.fake.requests) == sorted(phones)
    assert [n.status for n in await _notes(sessions, ids)] == ["sent", "sent", "logged"]
    assert await _done(sessions, row.id)
