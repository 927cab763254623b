"""The server's data folder: its identity, its organisation, its database and its blobs.

    DATA/server.json   canonical JSON: the organisation's public keys and the server's receipt
                       key (public), written by ``server init``
    DATA/server-key    the receipt signing seed (hex), readable by the server's user only
    DATA/server-key-N  each receipt key made after it (N = 2, 3, ...: ``server new-receipt-key``),
                       in force once the organisation's log names it (core/orglog.py)
    DATA/server.db     SQLite, unless a database URL is given
    DATA/blobs/        uploaded blobs (encrypted by the devices; the server holds no key)

The receipt key sits unencrypted because the server runs unattended. Whoever holds it can sign
receipts, which matters to devices deciding to wipe; it decrypts nothing. docs/deploy.md will
say how to keep it in a secrets store.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from fieldsync import durable
from fieldsync.core import crypto, encoding
from fieldsync.core.ids import fingerprint, is_hex32
from fieldsync.core.org import OrgKeys
from fieldsync.core.org import parse as parse_org
from fieldsync.errors import MalformedData, StoreExists, StoreNotFound
from fieldsync.server import schema

CONFIG_FILE = "server.json"
KEY_FILE = "server-key"
DB_FILE = "server.db"
FORMAT = "fieldsync/server"


@dataclass(frozen=True)
class ServerData:
    folder: Path
    org: OrgKeys
    receipt_key: crypto.SigningPair  # the first: server.json's, where the log starts

    def receipt_keys(self) -> list[crypto.SigningPair]:
        """Every receipt key this server holds, the first first: read from the folder each
        time, so a key made by ``server new-receipt-key`` serves without a restart."""
        return [self.receipt_key, *(key for _, key in _later_keys(self.folder))]

    def receipt_pair(self, public_hex: str) -> crypto.SigningPair | None:
        return next((k for k in self.receipt_keys() if k.public.hex() == public_hex), None)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.receipt_key.public)

    @property
    def blob_folder(self) -> Path:
        """Where blobs are kept unless the server is told another folder (shared storage)."""
        return self.folder / "blobs"

    def database_url(self) -> str:
        return f"sqlite:///{self.folder / DB_FILE}"

    def migrate_command(self, database_url: str | None) -> str:
        """The command that brings this server's database to this fieldsync's schema (the
        URL is not repeated: it may hold a password)."""
        url = " --database-url URL" if database_url else ""
        return f"fieldsync server migrate --data {self.folder}{url}"


def init(folder: Path, org_file: bytes, database_url: str | None = None) -> ServerData:
    """A new server data folder for an organisation (its ``org-public.json`` bytes), with its
    database's tables: the folder's SQLite file, or the database at ``database_url``."""
    if (folder / CONFIG_FILE).exists():
        raise StoreExists(
            f"a server is already set up in {folder}",
            hint="Nothing was changed. Use another --data folder for a new server, or start "
            f"this one with 'fieldsync server run --data {folder}'.",
        )
    org = parse_org(org_file)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    (folder / "blobs").mkdir(exist_ok=True, mode=0o700)
    # first: if it fails, nothing else is written and init can run again
    schema.migrate_url(database_url or f"sqlite:///{folder / DB_FILE}")
    key = crypto.SigningPair.generate()
    descriptor = os.open(folder / KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key.seed.hex() + "\n")
    config = {"format": FORMAT, "org": org.to_json(), "receipt_key": key.public.hex(), "version": 1}
    (folder / CONFIG_FILE).write_bytes(encoding.encode(config) + b"\n")
    return ServerData(folder, org, key)


def new_receipt_key(folder: Path) -> tuple[int, crypto.SigningPair]:
    """The next receipt key, kept as DATA/server-key-N (never over another): the
    administrator names it in the organisation's log, and from then on it signs receipts."""
    load(folder)  # a server folder, whole
    number = max((n for n, _ in _later_keys(folder)), default=1) + 1
    key = crypto.SigningPair.generate()
    path, partial = folder / f"{KEY_FILE}-{number}", folder / f".{KEY_FILE}-{number}.partial"
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key.seed.hex() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(partial, path)  # whole or not at all, and never over another key
    finally:
        partial.unlink()
    durable.fsync_dir(folder)
    return number, key


def _later_keys(folder: Path) -> list[tuple[int, crypto.SigningPair]]:
    found = []
    for path in folder.glob(f"{KEY_FILE}-*"):
        number = path.name.removeprefix(f"{KEY_FILE}-")
        if not number.isdigit():
            continue
        seed_hex = path.read_text(encoding="ascii").strip()
        if not is_hex32(seed_hex):
            raise MalformedData(f"the receipt key file {path} is damaged")
        found.append((int(number), crypto.SigningPair(bytes.fromhex(seed_hex))))
    return sorted(found, key=lambda item: item[0])


def load(folder: Path) -> ServerData:
    config_path = folder / CONFIG_FILE
    if not config_path.exists():
        raise StoreNotFound(
            f"there is no fieldsync server in {folder}",
            hint="Run 'fieldsync server init --data DIR --org org-public.json'.",
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        org = parse_org(encoding.encode(config["org"]))
        seed_hex = (folder / KEY_FILE).read_text(encoding="ascii").strip()
        if config.get("format") != FORMAT or not is_hex32(seed_hex):
            raise ValueError("unexpected contents")
        key = crypto.SigningPair(bytes.fromhex(seed_hex))
        if key.public.hex() != config["receipt_key"]:
            raise ValueError("the receipt key does not match server.json")
    except (OSError, ValueError, KeyError, TypeError, MalformedData) as exc:
        raise MalformedData(f"the server data in {folder} is damaged ({exc})") from exc
    return ServerData(folder, org, key)
