"""A version pulled with a wrap for the device's own box key is kept under the epoch key: the
box key, which stays in the vault, opens nothing at rest."""

from __future__ import annotations

from sqlmodel import select

from fieldsync.services import pull, reading, records, sync
from fieldsync.services.forms import get_form
from fieldsync.store.db import WrapRow
from tests.conftest import example
from tests.exchange.conftest import World


def test_a_pulled_version_sealed_to_the_device_is_kept_under_its_epoch_key(world: World) -> None:
    documenter = world.device("laptop-a")
    record = records.create(documenter, get_form("incident"), example("incident"))
    sync.push(documenter)
    pull.pull(world.analyst)
    analysts = records.edit(world.analyst, record, sets=["perpetrator.attribution=confirmed"])
    sync.push(world.analyst)  # sealed for the organisation and for the recording device
    assert pull.pull(documenter).received == 1
    assert reading.read(documenter, record).body.answers["perpetrator"]["attribution"] == (
        "confirmed"
    )
    box = documenter.identity.box.public.hex()
    with documenter.session() as session:
        assert session.exec(select(WrapRow).where(WrapRow.reader == box)).all() == []
        own = documenter.own_wraps(session, [analysts])
    assert own[analysts].epoch == documenter.epoch.number
