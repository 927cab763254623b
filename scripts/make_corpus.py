#!/usr/bin/env python3
"""Write the committed fuzz corpus: tests/corpus/<decoder>/{ok,no}-<hash>.bin.

    .venv/bin/python scripts/make_corpus.py [--per-decoder 40] [--seed 6] [--only DECODER]

For every decoder in tests/decoders.py: its valid sample, deterministic mutations of it (bit
flips, truncations, insertions, deletions, splices, length fields pushed to their limits) and
classic hostile inputs (empty, deep nesting, huge numbers, broken UTF-8, terminal escapes). Each
file is named by what the decoder did with it when the corpus was made: ``ok-`` accepted,
``no-`` refused with a fieldsync error. tests/core/test_corpus.py replays every file on every
run and fails if a decoder now does anything else, so a decoder that starts accepting what it
refused (or crashing) is caught. Anything but acceptance or a fieldsync error stops this script:
that is a bug to fix before the corpus is committed.

``--only`` rewrites one decoder's folder (after a change to its format) and leaves the others'
files as they were. Cases hypothesis finds (tests/core/test_fuzz.py) belong here too: add them to ``HOSTILE`` or
save them with ``--add DECODER FILE``.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fieldsync.errors import FieldsyncError  # noqa: E402
from tests.decoders import BY_NAME, DECODERS, Decoder  # noqa: E402

CORPUS = ROOT / "tests" / "corpus"
HOSTILE = [
    b"",
    b"\x00" * 64,
    b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 3000 + b"1" + b"}" * 3000,
    b"9" * 5000,
    b'"\\ud800"',
    b"\xff\xfe\xfd",
    b"\xc0\x80",
    b"\x1b[2J\x1b]0;owned\x07",
    b'{"format":"fieldsync-receipt/1","device":"\x1b[31m"}',
    b"FSCARRY\x01T" + b"\xff" * 8,
    b"FSCARRY\x01B" + (2**40).to_bytes(8, "big"),
    b"FSBL\x01" + b"\x00" * 24,
    b"fs=:" + b"A" * 86 + b"==:",
]


def mutations(
    original: bytes, rng: random.Random, count: int, focus: tuple[range, ...] = ()
) -> list[bytes]:
    """``count`` changes of ``original``, each at a random place (within ``focus`` if given)."""
    out: list[bytes] = []
    places = [at for span in focus for at in span]
    for _ in range(count):
        n = len(original)
        at = rng.choice(places) if places else rng.randrange(max(n, 1))
        kind = rng.randrange(6)
        if kind == 0 and n:
            out.append(
                original[:at] + bytes([original[at] ^ (1 << rng.randrange(8))]) + original[at + 1 :]
            )
        elif kind == 1:
            out.append(original[:at])
        elif kind == 2:
            out.append(original[:at] + rng.randbytes(rng.randint(1, 16)) + original[at:])
        elif kind == 3:
            out.append(original[:at] + original[at + rng.randint(1, 32) :])
        elif kind == 4:  # a slice of the input moved elsewhere
            piece = original[at : at + rng.randint(1, 64)]
            where = rng.randrange(max(n, 1))
            out.append(original[:where] + piece + original[where:])
        else:  # a run of 0xff or 0x00, as a length field pushed to its limit would look
            out.append(original[:at] + bytes([rng.choice((0, 255))]) * 8 + original[at + 8 :])
    return out


def outcome(decoder: Decoder, data: bytes) -> str:
    try:
        decoder.decode(data)
    except FieldsyncError:
        return "no"
    return "ok"


def save(decoder: Decoder, data: bytes) -> Path:
    folder = CORPUS / decoder.name
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{outcome(decoder, data)}-{hashlib.blake2b(data, digest_size=8).hexdigest()}.bin"
    path = folder / name
    path.write_bytes(data)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-decoder", type=int, default=40)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--add", nargs=2, metavar=("DECODER", "FILE"))
    parser.add_argument("--only", choices=sorted(BY_NAME), metavar="DECODER")
    args = parser.parse_args()
    if args.add:
        print(save(BY_NAME[args.add[0]], Path(args.add[1]).read_bytes()))
        return
    rng = random.Random(args.seed)
    for decoder in DECODERS if args.only is None else (BY_NAME[args.only],):
        for old in (CORPUS / decoder.name).glob("*.bin"):
            old.unlink()
        sample = decoder.sample()
        changed = mutations(sample, rng, args.per_decoder, decoder.focus)
        for data in [sample, *changed, *HOSTILE]:
            save(decoder, data)
        kept = sorted((CORPUS / decoder.name).glob("*.bin"))
        accepted = sum(p.name.startswith("ok-") for p in kept)
        print(f"{decoder.name:16} {len(kept):3} inputs, {accepted} accepted")


if __name__ == "__main__":
    main()
