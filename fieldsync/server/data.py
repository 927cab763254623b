"""The server's data folder: its identity, its organisation, its database and its blobs.

    DATA/server.json   canonical JSON: the organisation's public keys and the server's receipt
                       key (public), written by ``server init``
    DATA/server-key    the receipt signing seed (hex), readable by the server's user only
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
    receipt_key: crypto.SigningPair

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
