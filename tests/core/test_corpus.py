"""Replay the committed fuzz corpus (tests/corpus/, made by scripts/make_corpus.py) through every
decoder on every run: each input is still accepted or refused exactly as when it was recorded,
and refused only with a fieldsync error, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldsync.errors import FieldsyncError
from tests.decoders import BY_NAME

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
CASES = sorted(CORPUS.glob("*/*.bin"))


def test_every_decoder_has_a_corpus() -> None:
    assert {path.parent.name for path in CASES} == set(BY_NAME)
    for name in BY_NAME:
        kept = [p.name for p in CASES if p.parent.name == name]
        assert any(n.startswith("ok-") for n in kept), f"{name}: no valid sample"
        assert sum(n.startswith("no-") for n in kept) >= 20, f"{name}: too few hostile inputs"


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_input_is_decided_as_recorded(case: Path) -> None:
    decoder = BY_NAME[case.parent.name]
    data = case.read_bytes()
    if case.name.startswith("ok-"):
        decoder.decode(data)
    else:
        with pytest.raises(FieldsyncError):
            decoder.decode(data)
