"""A disk image as a carver finds it: a real ext4 file system on a loop file, and the searches
someone holding the passphrase runs over its raw blocks after the store's files are gone."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fieldsync.core import crypto, vault
from fieldsync.errors import FieldsyncError

IMAGE_BYTES = 64 * 1024 * 1024
BLOCK = 4096
# The two formats a device's own copy of a content key has had (docs/format.md, "Store"): a
# sealed box to the device's box key (before epochs), and an AEAD box under an epoch key.
SEALED_WRAP_BYTES = crypto.SEAL_BYTES  # 80
EPOCH_WRAP_BYTES = crypto.NONCE_BYTES + crypto.KEY_BYTES + crypto.AEAD_TAG_BYTES  # 72
LABEL_EPOCH_WRAP = b"fieldsync/epoch-wrap/v1"
LABEL_EPOCH_SLOT = b"fieldsync/epoch-slot/v1"
LABEL_EPOCHS = b"fieldsync/epochs/v1"
LABEL_INDEX = b"fieldsync/index/v1"
LABEL_DRAFT = b"fieldsync/draft/v1"
EPOCH_SLOT_BYTES = crypto.NONCE_BYTES + 8 + crypto.KEY_BYTES + crypto.AEAD_TAG_BYTES  # 80
# SQLite keeps a row's columns together, in order: a wrap follows its entry's id (and, in the
# wraps table, a reader's key) within this many bytes.
AFTER_ID = 64 + 64 + 16 + SEALED_WRAP_BYTES
_VAULT = re.compile(rb'\{"format":"fieldsync/vault".{1,4000}?"version":1\}', re.DOTALL)


@contextlib.contextmanager
def loop_filesystem(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """``(mount point, image file)`` of a fresh ext4 file system; unmounted on leaving, so the
    image then holds everything the kernel wrote. Skips only where mounting is impossible and
    this is not CI."""
    image, mount = tmp_path / "disk.img", tmp_path / "mnt"
    mount.mkdir()
    subprocess.run(["truncate", "-s", str(IMAGE_BYTES), str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    done = mount_image(image, mount)
    if done.returncode != 0:
        reason = f"cannot mount a loop file system here: {done.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield mount, image
    finally:
        unmount(mount)


def mount_image(image: Path, mount: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["mount", "-o", "loop", str(image), str(mount)], capture_output=True, text=True
    )


def unmount(mount: Path) -> None:
    if os.path.ismount(mount):
        subprocess.run(["umount", str(mount)], check=True)


@dataclass
class Keys:
    """Everything a carver holding the passphrase can open: vault keys, box keys, epoch keys."""

    vault_keys: list[bytes] = field(default_factory=list)
    box_keys: list[crypto.BoxPair] = field(default_factory=list)
    epoch_keys: list[bytes] = field(default_factory=list)


def vaults_in(image: bytes) -> list[bytes]:
    return list(dict.fromkeys(m.group(0) for m in _VAULT.finditer(image)))


def keys_in(image: bytes, passphrase: str) -> Keys:
    """Every vault in the image that the passphrase opens, and every epoch-key slot (at any
    block boundary, where a file's bytes start) that one of their vault keys opens."""
    keys = Keys()
    for found in vaults_in(image):
        try:
            vault_key, secrets = vault.unlock(found, passphrase)
        except FieldsyncError:
            continue
        keys.vault_keys.append(vault_key)
        keys.box_keys += [crypto.BoxPair(k) for n, k in secrets.keys.items() if "box" in n]
    slot_keys = [crypto.derive_key(k, LABEL_EPOCHS) for k in keys.vault_keys]
    for offset in range(0, len(image) - EPOCH_SLOT_BYTES, BLOCK):
        if not any(image[offset : offset + EPOCH_SLOT_BYTES]):
            continue
        for slot_key in slot_keys:
            for index in (0, 1):
                keys.epoch_keys += epoch_slot(slot_key, index, image[offset:])
    return keys


def epoch_slot(slot_key: bytes, index: int, data: bytes) -> list[bytes]:
    nonce, ct = data[: crypto.NONCE_BYTES], data[crypto.NONCE_BYTES : EPOCH_SLOT_BYTES]
    try:
        plain = crypto.open_with_key(
            slot_key, nonce, ct, LABEL_EPOCH_SLOT + bytes([index]), what="a slot"
        )
    except FieldsyncError:
        return []
    return [plain[8:]] if int.from_bytes(plain[:8], "big") else []


def opened_keys(image: bytes, keys: Keys, entry_ids: list[str]) -> dict[str, bytes]:
    """Every content key found in the image: each wrap-sized window after an occurrence of an
    entry's id, opened as either format with every key held. ``{entry id: content key}``."""
    found: dict[str, bytes] = {}
    for entry_id in entry_ids:
        tried: set[bytes] = set()  # the WAL holds many copies of one page
        for hit in re.finditer(re.escape(entry_id.encode()), image):
            window = image[hit.start() : hit.end() + AFTER_ID]
            if window in tried:
                continue
            tried.add(window)
            key = _open_near(window, keys, entry_id)
            if key is not None:
                found[entry_id] = key
                break
    return found


def _open_near(window: bytes, keys: Keys, entry_id: str) -> bytes | None:
    label = LABEL_EPOCH_WRAP + entry_id.encode()
    for offset in range(len(window) - EPOCH_WRAP_BYTES + 1):
        piece = window[offset : offset + SEALED_WRAP_BYTES]
        if bytes(8) in piece[:EPOCH_WRAP_BYTES]:  # freed space: a wrap is random bytes
            continue
        for box in keys.box_keys:
            if len(piece) == SEALED_WRAP_BYTES:
                with contextlib.suppress(FieldsyncError):
                    return box.unwrap(piece, what="a carved wrap")
        nonce = window[offset : offset + crypto.NONCE_BYTES]
        ct = window[offset + crypto.NONCE_BYTES : offset + EPOCH_WRAP_BYTES]
        for epoch_key in keys.epoch_keys:
            with contextlib.suppress(FieldsyncError):
                return crypto.open_with_key(epoch_key, nonce, ct, label, what="a carved wrap")
    return None


def opened_index_rows(image: bytes, keys: Keys, sizes: dict[str, int]) -> set[str]:
    """The records whose encrypted index row (form, summary, times) opens from the image."""
    return _opened_rows(image, keys, LABEL_INDEX, sizes)


def opened_drafts(image: bytes, keys: Keys, sizes: dict[str, int]) -> set[str]:
    """The drafts (answers typed into an unfinished ``new``) that open from the image."""
    return _opened_rows(image, keys, LABEL_DRAFT, sizes)


def _opened_rows(image: bytes, keys: Keys, purpose: bytes, sizes: dict[str, int]) -> set[str]:
    """After each occurrence of a row's id, every nonce position with the row's known
    ciphertext size, under the subkey for ``purpose`` of every vault key (as before epochs)
    and every epoch key. Returns the ids of the rows that open."""
    subkeys = [crypto.derive_key(k, purpose) for k in keys.vault_keys + keys.epoch_keys]
    found = set()
    for row_id, size in sizes.items():
        label = purpose + row_id.encode()
        for hit in re.finditer(re.escape(row_id.encode()), image):
            window = image[hit.end() : hit.end() + 160 + size]
            if _opens_at_some_offset(window, subkeys, label, size):
                found.add(row_id)
                break
    return found


def _opens_at_some_offset(window: bytes, keys: list[bytes], label: bytes, size: int) -> bool:
    for offset in range(len(window) - crypto.NONCE_BYTES - size + 1):
        nonce = window[offset : offset + crypto.NONCE_BYTES]
        ct = window[offset + crypto.NONCE_BYTES : offset + crypto.NONCE_BYTES + size]
        for key in keys:
            with contextlib.suppress(FieldsyncError):
                crypto.open_with_key(key, nonce, ct, label, what="a carved index row")
                return True
    return False
