from __future__ import annotations

from pathlib import Path

import pytest

from fieldsync.errors import (
    AnswersInvalid,
    AttachmentError,
    AttachmentNotFound,
    DecryptionFailed,
    InputError,
    OutputPathError,
)
from fieldsync.services import attachments, drafts, reading, record_history, records, settling
from fieldsync.services.forms import get_form
from fieldsync.store import blobs
from fieldsync.store.store import Store
from tests.conftest import entered, example
from tests.services.conftest import in_conflict


def new_incident(store: Store) -> str:
    return records.create(store, get_form("incident"), example("incident"))


def test_answers_come_back_exactly_as_entered(store: Store) -> None:
    answers = example("incident")
    answers["narrative"] = "\u200fنص عربي\u200e with\ttabs\nand lines \x1b[2J"
    record = records.create(store, get_form("incident"), answers)
    assert entered(reading.read(store, record).body.answers) == answers


def test_invalid_answers_save_nothing(store: Store) -> None:
    with pytest.raises(AnswersInvalid, match="Date of the incident is required"):
        records.create(store, get_form("incident"), {"narrative": "x"})
    assert store.index() == []


def test_edit_with_set_makes_a_new_version_and_keeps_the_old(store: Store) -> None:
    record = new_incident(store)
    records.edit(store, record, sets=["victims.total=6", "location.governorate=حلب"])
    view = reading.read(store, record)
    assert view.body.answers["victims"]["total"] == 6
    assert view.body.answers["location"]["governorate"] == "aleppo"
    history = record_history.history(store, record)
    assert history[0].changed == tuple(sorted(example("incident")))  # created: every field
    assert history[1].changed == ("location.governorate", "victims.total")
    assert history[0].version.body.answers["victims"]["total"] == 5  # type: ignore[union-attr]


def test_edit_refuses_no_change_unknown_fields_and_invalid_values(store: Store) -> None:
    record = new_incident(store)
    with pytest.raises(InputError, match="nothing changed"):
        records.edit(store, record, sets=["victims.total=5"])
    with pytest.raises(InputError, match="no field 'victims.totl'"):
        records.edit(store, record, sets=["victims.totl=5"])
    with pytest.raises(InputError, match="FIELD=VALUE"):
        records.edit(store, record, sets=["victims.total"])
    with pytest.raises(AnswersInvalid):
        records.edit(store, record, sets=["victims.total=1"])  # fewer than listed
    assert store.index_entry(record).versions == 1


def test_edit_with_empty_value_removes_an_optional_field(store: Store) -> None:
    record = new_incident(store)
    records.edit(store, record, sets=["weapons="])
    assert "weapons" not in reading.read(store, record).body.answers


def test_attach_and_decrypt_back_byte_identical(store: Store, tmp_path: Path) -> None:
    record = new_incident(store)
    photo = tmp_path / "صورة المستشفى.jpg"
    photo.write_bytes(bytes(range(256)) * 1000)
    attachments.attach(store, record, [photo])
    view = reading.read(store, record)
    (attachment,) = view.body.attachments
    assert attachment.name == "صورة المستشفى.jpg"
    assert attachment.media_type == "image/jpeg"
    out = attachments.save_attachment(store, record, 1, tmp_path / "out.jpg", force=False)
    assert out.read_bytes() == photo.read_bytes()
    with pytest.raises(OutputPathError, match="already exists"):
        attachments.save_attachment(store, record, 1, out, force=False)
    with pytest.raises(AttachmentNotFound):
        attachments.save_attachment(store, record, 2, tmp_path / "x", force=False)


def test_attach_refuses_missing_files_and_folders_and_changes_nothing(
    store: Store, tmp_path: Path
) -> None:
    record = new_incident(store)
    good = tmp_path / "good.txt"
    good.write_text("ok")
    with pytest.raises(AttachmentError, match="no file"):
        attachments.attach(store, record, [good, tmp_path / "missing.jpg"])
    with pytest.raises(AttachmentError, match="folder"):
        attachments.attach(store, record, [tmp_path])
    assert store.index_entry(record).versions == 1


def test_a_damaged_blob_leaves_no_partial_plaintext(store: Store, tmp_path: Path) -> None:
    record = new_incident(store)
    video = tmp_path / "video.mp4"
    video.write_bytes(b"frame" * 100_000)
    attachments.attach(store, record, [video])
    blob_id = reading.read(store, record).body.attachments[0].blob
    path = blobs.blob_path(store, blob_id)
    data = bytearray(path.read_bytes())
    data[-30] ^= 0xFF  # the last chunk: plaintext of earlier chunks was already written
    path.write_bytes(bytes(data))
    with pytest.raises(DecryptionFailed):
        attachments.save_attachment(store, record, 1, tmp_path / "out.mp4", force=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "video.mp4"]


def test_saving_into_a_folder_uses_a_name_that_cannot_escape_it(
    store: Store, tmp_path: Path
) -> None:
    record = new_incident(store)
    source = tmp_path / "a.txt"
    source.write_text("content")
    attachments.attach(store, record, [source])
    # A hostile name inside a record (e.g. arriving from another device later).
    for hostile, expected in [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("/absolute/x.txt", "x.txt"),
        ("..", "attachment"),
        (".hidden", "hidden"),
        ("a\x1b[31mb\n.txt", "a_[31mb_.txt"),
    ]:
        assert attachments.safe_file_name(hostile) == expected
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    written = attachments.save_attachment(store, record, 1, out_dir, force=False)
    assert written.parent == out_dir


def test_drafts_round_trip_and_are_dropped_on_save(store: Store) -> None:
    form = get_form("incident")
    draft = drafts.start(store, form.ref)
    draft.answers.update(example("incident"))
    draft.save(store)
    (found,) = drafts.find(store, form.ref)
    assert found.answers == example("incident")  # a draft holds just what was typed
    records.create(store, form, found.answers, draft_id=found.id)
    assert drafts.find(store, form.ref) == []


def test_a_value_typed_to_resolve_is_held_to_the_entry_checks(store: Store) -> None:
    """Competing values came from devices and are held to the form only; a value typed at
    `resolve --value` is a person's entry, as an edit's is."""
    record = records.create(store, get_form("incident"), example("incident"))
    in_conflict(store, record, "date", ("2024-03-04", "2024-03-06"))
    with pytest.raises(AnswersInvalid, match="a date after tomorrow cannot have happened yet"):
        settling.resolve(store, record, [("date", None, "2099-03-05")])
    settling.resolve(store, record, [("date", None, "2024-03-05")])
    assert reading.read(store, record).body.answers["date"] == "2024-03-05"
