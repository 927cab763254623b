"""The epoch keys: what the device's own copy of every content key is wrapped under.

Wiping delivered records destroys a key, not rows: the records kept are re-wrapped under a new
epoch key, then the old one is overwritten where it lies. Deleted rows, freed database pages and
old WAL frames keep their wraps, but nothing that opens them is left.

``HOME/epochs`` holds two slots, one per file-system block (offsets 0 and 4096), so writing one
never rewrites the other's block. Each slot is ``nonce(24) || AEAD(epoch u64 BE || key(32))``
under a subkey of the vault key, with the slot's number in the associated data; epoch 0 marks an
empty slot (its key is random). The file is only ever overwritten in place (same file, same
size, fsync): replacing it by rename would leave the old key's blocks behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fieldsync import durable
from fieldsync.core import crypto
from fieldsync.errors import FieldsyncError

EPOCHS_FILE = "epochs"
LABEL_EPOCHS = b"fieldsync/epochs/v1"  # the vault subkey the slots are sealed under
LABEL_EPOCH_SLOT = b"fieldsync/epoch-slot/v1"
LABEL_EPOCH_WRAP = b"fieldsync/epoch-wrap/v1"
SLOT_STRIDE = 4096
EPOCH_BYTES = 8
SLOT_BYTES = crypto.NONCE_BYTES + EPOCH_BYTES + crypto.KEY_BYTES + crypto.AEAD_TAG_BYTES
FILE_BYTES = SLOT_STRIDE + SLOT_BYTES
SLOTS = 2


@dataclass(frozen=True)
class Epoch:
    number: int
    key: bytes

    def __repr__(self) -> str:  # never print the key
        return f"Epoch({self.number})"


class EpochFile:
    """The two slots of ``HOME/epochs``, sealed under one vault key."""

    def __init__(self, path: Path, vault_key: bytes) -> None:
        self.path = path
        self._key = crypto.derive_key(vault_key, LABEL_EPOCHS)

    def exists(self) -> bool:
        return self.path.exists()

    def create(self, epoch: Epoch) -> None:
        """A new file: ``epoch`` in slot 0, slot 1 empty (never over an existing file)."""
        data = bytearray(crypto.random_bytes(FILE_BYTES))
        data[0:SLOT_BYTES] = self._seal(0, epoch)
        data[SLOT_STRIDE:FILE_BYTES] = self._seal(1, None)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, bytes(data))
            os.fsync(fd)
        finally:
            os.close(fd)
        durable.fsync_dir(self.path.parent)

    def read(self) -> list[Epoch | None]:
        """Each slot's epoch; None for an empty slot or one this vault key does not open."""
        data = self.path.read_bytes()
        return [self._open(index, data[index * SLOT_STRIDE :]) for index in range(SLOTS)]

    def write(self, index: int, epoch: Epoch | None) -> None:
        """Overwrite one slot where it lies (``None`` empties it), durably, before returning."""
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(fd, self._seal(index, epoch), index * SLOT_STRIDE)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _seal(self, index: int, epoch: Epoch | None) -> bytes:
        number, key = (epoch.number, epoch.key) if epoch else (0, crypto.random_bytes(32))
        nonce, ct = crypto.seal_with_key(
            self._key, number.to_bytes(EPOCH_BYTES, "big") + key, _label(index)
        )
        return nonce + ct

    def _open(self, index: int, data: bytes) -> Epoch | None:
        nonce, ct = data[: crypto.NONCE_BYTES], data[crypto.NONCE_BYTES : SLOT_BYTES]
        try:
            plain = crypto.open_with_key(
                self._key, nonce, ct, _label(index), what=f"slot {index} of {self.path}"
            )
        except FieldsyncError:
            return None
        number = int.from_bytes(plain[:EPOCH_BYTES], "big")
        return Epoch(number, plain[EPOCH_BYTES:]) if number else None


def _label(index: int) -> bytes:
    return LABEL_EPOCH_SLOT + bytes([index])


def wrap(epoch: Epoch, entry_id: str, content_key: bytes) -> bytes:
    """The device's own copy of a content key: ``nonce || AEAD``, bound to the entry's id."""
    nonce, ct = crypto.seal_with_key(epoch.key, content_key, LABEL_EPOCH_WRAP + entry_id.encode())
    return nonce + ct


def unwrap(epoch: Epoch, entry_id: str, wrapped: bytes) -> bytes:
    return crypto.open_with_key(
        epoch.key,
        wrapped[: crypto.NONCE_BYTES],
        wrapped[crypto.NONCE_BYTES :],
        LABEL_EPOCH_WRAP + entry_id.encode(),
        what=f"the key of version {entry_id[:12]}",
    )


def fresh(number: int) -> Epoch:
    return Epoch(number, crypto.random_bytes(crypto.KEY_BYTES))
