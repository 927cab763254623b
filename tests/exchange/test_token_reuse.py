"""An invite's token vouches for one device key (issue 15, review of item 1).

A dishonest server keeps every device's enrolment, invite and token included. From one it can
sign a second enrolment with a key of its own, list that device and accept batches it signs:
the invite verifies and so does the new proof. Only the token's reuse shows it.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlmodel import Session, col, select

from fieldsync.core import crypto, enrolment, invite
from fieldsync.core.entry import Entry
from fieldsync.server.tables import DeviceRow, InviteUseRow
from fieldsync.services import pull
from fieldsync.store import keyvalue
from fieldsync.store.store import Store
from tests.exchange.conftest import World
from tests.exchange.test_pull_poisoned import (
    Poisoner,
    audit,
    held_records,
    incident,
    recorded,
)


def minted(world: World, real: Store) -> Poisoner:
    """A device the server makes up from ``real``'s enrolment: a new key, the same token."""
    with Session(world.app.state.engine) as session:
        row = session.exec(select(DeviceRow).where(DeviceRow.key == real.identity.device_id)).one()
        shown = enrolment.parse(bytes(row.enrolment))
        token = invite.read(shown.invite, now_ms=None)
        signer, box = crypto.SigningPair.generate(), crypto.BoxPair.generate()
        forged = enrolment.request(
            signer, box, shown.invite, token.token, server_key=bytes.fromhex(token.server_key)
        )
        session.add(
            DeviceRow(
                key=signer.public.hex(),
                box_key=box.public.hex(),
                name=row.name,
                enrolled_ms=row.enrolled_ms,
                enrolment=forged.encode(),
            )
        )
        session.commit()
    fake = Poisoner(world, real)
    fake.signer = signer
    return fake


def sent_by(fake: Poisoner) -> Entry:
    entry, key = fake.seal(incident())
    fake.send([entry], [fake.wrap(key)])
    return entry


def test_a_device_the_server_minted_from_a_spent_invite_is_set_aside_by_name(
    world: World,
) -> None:
    laptop, other = world.device("laptop 7"), world.device("other laptop")
    expected = {recorded(laptop)}
    assert pull.pull(world.analyst).received == 1  # the analyst knows laptop 7 from here on
    fake = minted(world, laptop)
    made_up = sent_by(fake)
    expected |= {recorded(other), recorded(laptop)}

    report = pull.pull(world.analyst)
    assert made_up.header.record not in held_records(world.analyst)
    assert held_records(world.analyst) == expected  # everyone else's sent_by came in
    (found,) = report.problems
    assert found.author == fake.signer.public.hex() and found.seqs == [1]
    assert "invite 'laptop 7'" in found.message and "already used: refused" in found.message
    assert f"device 'laptop 7' ({laptop.identity.fingerprint})" in found.message
    registry = keyvalue.setting(world.analyst, "registry") or {}
    assert fake.signer.public.hex() not in registry["devices"]

    again = pull.pull(world.analyst, from_start=True)
    assert made_up.header.record not in held_records(world.analyst)
    assert again.received == 0 and again.problems == report.problems


def test_two_devices_first_seen_on_one_token_are_both_refused(world: World) -> None:
    laptop = world.device("laptop 7")
    real = recorded(laptop)
    made_up = sent_by(minted(world, laptop))
    report = pull.pull(world.analyst)
    assert held_records(world.analyst).isdisjoint({real, made_up.header.record})
    assert {p.author for p in report.problems} == {
        laptop.identity.device_id,
        made_up.header.author,
    }
    assert all("another device already used: refused" in p.message for p in report.problems)


def test_admin_verify_names_two_devices_sharing_a_token(world: World) -> None:
    laptop = world.device("laptop 7")
    recorded(laptop)
    fake = minted(world, laptop)
    sent_by(fake)
    checked = audit(world)
    assert not checked.ok
    for key in (laptop.identity.device_id, fake.signer.public.hex()):
        (author,) = [a for a in checked.authors if a.key == key]
        assert not author.enrolment_ok
        assert any("token was used by another device too" in p.what for p in author.problems)


def test_a_minted_device_stays_refused_when_the_server_stops_listing_the_real_one(
    world: World,
) -> None:
    laptop = world.device("laptop 7")
    recorded(laptop)
    pull.pull(world.analyst)
    real = laptop.identity.device_id
    fake = minted(world, laptop)
    with Session(world.app.state.engine) as session:  # the token's first device, hidden
        session.exec(delete(InviteUseRow).where(col(InviteUseRow.device) == real))  # type: ignore[call-overload]
        session.exec(delete(DeviceRow).where(col(DeviceRow.key) == real))  # type: ignore[call-overload]
        session.commit()
    made_up = sent_by(fake)
    for _ in range(2):  # and at the next pull, when the store's registry no longer lists it
        report = pull.pull(world.analyst)
        assert made_up.header.record not in held_records(world.analyst)
        (found,) = [p for p in report.problems if p.author == fake.signer.public.hex()]
        assert "already used: refused" in found.message
