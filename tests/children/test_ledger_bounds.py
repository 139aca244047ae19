"""Ledger import at scale (issue 12): what the bulk writes store is what the file's own
operations store, and a chunk's candidates stay within a bound whatever the file's size."""


from sqlalchemy import select

from db.crypto import name_index, phone_index
from db.models_children import Child, ChildEvent, Guardian
from dispatch.children.matching_service import child_profile_of
from tests.fixtures.children import a_name, a_place, an_id, csv_bytes, named
from workflows.matching.keys import keys


def row(name, idn, birth, place, *, phone="13700000000"):
    return [name, idn, "男", birth, "东湖市湖东区", f"{place}小区8栋", "留守流动",
            "张某", "母亲", phone, "外出务工", "东湖第一小学", "幸福街道幸福里社区"]


async def _import(client, headers, content: bytes, *, dry_run: bool):
    response = await client.post(
        "/api/v1/children/import", headers=headers, files={"file": ("l.csv", content)},
        data={"dry_run": "true" if dry_run else "false", "kind": "ledger"})
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_new_child_is_stored_as_the_file_stores_one(client, make_user, login,
                                                           sessions):
    """Sealed name and ID number, the name's index, the blocking keys with the guardian's
    phone, the database's timestamps, the guardian and the created event."""
    caseworker = await login(await make_user("caseworker"))
    (a, _), (b, _) = a_name(), a_name()
    place, ida = a_place(), an_id()
    done = await _import(client, caseworker, csv_bytes([
        row(a, ida, "2015-03-08", place), row(b, "", "2016-05-01", place, phone="")]),
        dry_run=False)
    assert done["counts"]["new"] == 2
    async with sessions() as session:
        first = (await session.execute(select(Child).where(named(a)))).scalar_one()
        second = (await session.execute(select(Child).where(named(b)))).scalar_one()
        guardians = (await session.execute(select(Guardian).where(
            Guardian.child_id.in_([first.id, second.id])).order_by(Guardian.id))).scalars()
        events = (await session.execute(select(ChildEvent).where(
            ChildEvent.child_id.in_([first.id, second.id])))).scalars().all()
    phone = "+8613700000000"
    assert first.name == a and first.id_number == ida and first.name_index == name_index(a)
    assert first.match_keys == keys(child_profile_of(first, [phone_index(phone)]))
    assert second.id_number is None and second.id_index is None
    assert second.match_keys == keys(child_profile_of(second, []))
    assert first.created_at and first.updated_at and first.categories == ["left_behind"]
    assert first.school == "东湖第一小学" and first.jurisdiction_code
    kept = [(g.child_id, g.relation, g.name, g.phone, g.phone_index is not None, g.state)
            for g in guardians]
    assert kept == [(first.id, "母亲", "张某", phone, True, "away"),
                    (second.id, "母亲", "张某", None, False, "away")]
    assert sorted(e.event for e in events) == ["created", "created"]
    assert all(e.data["from"] == "ledger" and e.data["import"] == done["import_id"]
               and e.actor for e in events)


async def test_the_pool_keeps_one_copy_of_the_sets_its_profiles_share(
    client, make_user, login, monkeypatch
):
    """Memory per pooled child (the pool holds up to the whole table): its profile holds
    the city's few category sets and the empty phone set shared, not a copy each, and the
    candidates' category tuples likewise."""
    caseworker = await login(await make_user("caseworker"))
    place = a_place()
    names = [a_name() for _ in range(6)]
    births = [f"201{i}-0{i + 1}-1{i}" for i in range(6)]
    # No guardian's number (a child's guardians' phones are its own set): the empty set.
    on_file = csv_bytes([row(n, "", b, place, phone="")
                         for (n, _), b in zip(names, births, strict=True)])
    assert (await _import(client, caseworker, on_file, dry_run=False))["counts"]["new"] == 6

    from dispatch.children import ledger as importer

    pools = []
    judge = importer._judge

    async def kept(session, pool, rows):
        pools.append(pool)
        await judge(session, pool, rows)

    monkeypatch.setattr(importer, "_judge", kept)
    again = csv_bytes([row(s, "", b, place, phone="")
                       for (_, s), b in zip(names, births, strict=True)])
    assert (await _import(client, caseworker, again, dry_run=True))["counts"]["new"] == 0
    pool = pools[-1]
    ours = [pool.profile(i) for i in pool.rows]
    assert len(ours) >= 6
    assert len({id(p.categories) for p in ours}) == len({p.categories for p in ours})
    # Only the children without a number: the pool may hold other tests' children with one.
    assert len({id(p.phones) for p in ours if not p.phones}) == 1
    assert len({id(pool.rows[i].categories) for i in pool.rows}) == \
        len({pool.rows[i].categories for i in pool.rows})
