"""The local encrypted store: a vault file, a SQLite database of entries, and blob files.

    HOME/vault            the secrets, sealed under Argon2id(passphrase)   (core/vault.py)
    HOME/epochs           the epoch key the store's own content-key copies are under
                          (store/epochs.py; overwritten in place, never replaced)
    HOME/store.db         entries, key wraps, encrypted index and drafts   (store/db.py)
    HOME/blobs/ab/abcd..  encrypted attachments, named by their hash       (core/blob.py)
    HOME/blobs/tmp/       blobs being written; anything left here is encrypted and discarded

Write ordering, and what survives a crash: a blob is written to blobs/tmp, flushed, then renamed
into place before the entry that references it is committed; an entry, its key wrap, the record
index and the device's clock move together in one SQLite transaction (WAL, synchronous=FULL).
A crash leaves either the whole save or none of it, plus at most an unreferenced encrypted blob.

``Store`` keeps what needs its engine and keys: opening and unlocking, the passphrase change,
the epoch keys, writing and reading versions and the index. The rest are functions over a
store: blobs.py, delivery.py, keyvalue.py (drafts and settings), settings.py, custody.py,
integrity.py.

Kept whole: a passphrase change and a new epoch re-seal everything the store holds under its
keys in one transaction, and a crash in either is settled on the next open; split, that
protocol would be spread over the modules whose rows it re-seals.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import os
import shutil
import time
from collections.abc import Callable, Iterator, Set
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func
from sqlalchemy.exc import DatabaseError
from sqlmodel import Session, col, select

from fieldsync import durable
from fieldsync.core import crypto, vault
from fieldsync.core.body import Body
from fieldsync.core.entry import parse as parse_entry
from fieldsync.core.settings import Forgotten, Pull
from fieldsync.errors import (
    DecryptionFailed,
    IntegrityError,
    MalformedData,
    RecordNotFound,
    StoreBusy,
    StoreCorrupted,
    StoreExists,
    StoreNotFound,
    StoreStateError,
    StoreWiped,
    UnsupportedFormat,
    WrongPassphrase,
)
from fieldsync.store import epochs, files, keyvalue, orgkeys, settings
from fieldsync.store.blobs import BLOBS_DIR
from fieldsync.store.db import (
    DB_FILE,
    SCHEMA_VERSION,
    EntryRow,
    LocalWrapRow,
    MetaRow,
    RecordRow,
    WrapRow,
    create_schema,
    database_error,
    db_errors,
    in_chunks,
    make_engine,
    schema_version,
)
from fieldsync.store.epochs import EPOCHS_FILE, Epoch, EpochFile
from fieldsync.store.identity import Identity
from fieldsync.store.index import IndexCodec, IndexEntry
from fieldsync.store.version import Version, damaged_entry, heads_of
from fieldsync.store.writer import Writer

VAULT_FILE = "vault"
NEW_VAULT_FILE = "vault.new"  # a passphrase change under way (``change_passphrase``)
LOCK_FILE = "store.lock"  # shared while a Store is open, alone while its keys change

OWN_WRAPS = "own_wraps"  # meta row: "epochs" once the store's own key copies are under them
VAULT_KEY_ID = "vault_key_id"  # meta row: which vault key the database is encrypted under
EPOCH = "epoch"  # meta row: which epoch key the database is encrypted under
LABEL_VAULT_KEY_ID = b"fieldsync/vault-key-id/v1"


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Store:
    """An unlocked store. Open it with ``Store.open`` or ``Store.create``; close it after."""

    def __init__(
        self,
        home: Path,
        engine: Engine,
        vault_key: bytes,
        identity: Identity,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self.home = home
        self._engine = engine
        self._use_vault_key(vault_key)
        self.identity = identity
        self.now_ms = now_ms or (lambda: int(time.time() * 1000))
        self.settings_cache: dict[
            str, dict[str, Any]
        ] = {}  # read or written here (store/keyvalue.py)
        self._epochs: dict[int, Epoch] | None = None  # read on first use
        self._codec: tuple[int, IndexCodec] | None = None
        self._lock = _shared_lock(home)

    def _use_vault_key(self, vault_key: bytes) -> None:
        self._vault_key = vault_key
        self.settings_key = keyvalue.settings_key(vault_key)
        self._epoch_file = EpochFile(self.home / EPOCHS_FILE, vault_key)

    @property
    def reader(self) -> crypto.BoxPair:
        """The box key this store reads versions with: the organisation's read key in an
        administrator's store (it reads everything documenters send), else the device's own."""
        return self.identity.org_read or self.identity.box

    # --- opening -------------------------------------------------------------------------

    @staticmethod
    def exists(home: Path) -> bool:
        return (home / VAULT_FILE).exists() or (home / DB_FILE).exists()

    @classmethod
    def create(
        cls,
        home: Path,
        passphrase: str,
        *,
        kdf: vault.KdfParams | None = None,
        admin: bool = False,
        identity: Identity | None = None,
    ) -> Store:
        """A new store; ``admin`` makes an administrator's store (with the org read key), and
        ``identity`` one with the keys given (an administrator's recovered from a backup)."""
        cls.refuse_existing(home)
        if (home / DB_FILE).exists():
            _discard_unfinished_init(home)
        files.make_private_dir(home)
        identity = identity or Identity.generate(admin=admin)
        vault_bytes, vault_key = vault.create(passphrase, identity.secrets(), kdf)
        files.make_private_file(home / DB_FILE)
        engine = make_engine(home / DB_FILE)
        create_schema(engine)
        files.make_private_dir(home / BLOBS_DIR / "tmp")
        EpochFile(home / EPOCHS_FILE, vault_key).create(epochs.fresh(1))
        with Session(engine) as session, session.begin():
            session.add(MetaRow(key=OWN_WRAPS, value="epochs"))
            session.add(MetaRow(key=VAULT_KEY_ID, value=_key_id(vault_key)))
            session.add(MetaRow(key=EPOCH, value="1"))
        # The vault goes last: a store without one is not a store, so a crash before this line
        # leaves nothing that ``open`` would mistake for a usable store.
        files.write_atomic(home / VAULT_FILE, vault_bytes)
        return cls(home, engine, vault_key, identity)

    @staticmethod
    def refuse_existing(home: Path) -> None:
        """Raise ``StoreExists`` if ``home`` holds a store (before any prompt, and in create)."""
        if (home / VAULT_FILE).exists():
            raise StoreExists(f"a store already exists in {home}")

    @staticmethod
    def require(home: Path) -> None:
        """Raise the precise error if ``home`` holds no openable store (before any prompt)."""
        if not (home / VAULT_FILE).exists():
            if (home / DB_FILE).exists():
                raise StoreWiped(
                    f"the store in {home} has no vault file: its keys were destroyed or removed",
                    hint="Restore the vault file from a backup; without it nothing can be read.",
                )
            raise StoreNotFound(f"there is no fieldsync store in {home}")

    @classmethod
    def open(cls, home: Path, passphrase: str) -> Store:
        cls.require(home)
        db_path = home / DB_FILE
        if not db_path.exists():
            raise StoreCorrupted(f"the store database {db_path} is missing")
        if (home / NEW_VAULT_FILE).exists():
            return cls._open_interrupted(home, passphrase)
        vault_key, identity = _unlock(home / VAULT_FILE, passphrase)
        return cls._opened(home, vault_key, identity)

    @classmethod
    def _opened(cls, home: Path, vault_key: bytes, identity: Identity) -> Store:
        store = cls(home, make_engine(home / DB_FILE), vault_key, identity)
        store._check_schema()
        store._move_own_wraps()
        orgkeys.use_admin_key_in_force(store)
        return store

    @classmethod
    def _open_interrupted(cls, home: Path, passphrase: str) -> Store:
        """Open a store whose passphrase change was cut short, finishing or undoing it by
        which vault key the database is under (the change's transaction moved it, or not)."""
        for name, pending in ((VAULT_FILE, False), (NEW_VAULT_FILE, True)):
            try:
                vault_key, identity = _unlock(home / name, passphrase)
            except (WrongPassphrase, StoreCorrupted):
                continue  # the other one, or the old vault already overwritten
            store = cls(home, make_engine(home / DB_FILE), vault_key, identity)
            if store._database_key_id() in (_key_id(vault_key), None if not pending else ""):
                store._settle_passphrase_change(pending)
                store.close()
                return cls._opened(home, vault_key, identity)
            store.close()
            which = "old" if pending else "new"
            raise StoreStateError(
                f"a passphrase change of the store in {home} was cut short, and the {which} "
                "passphrase is the one that opens it",
                hint=f"Nothing was changed. Use the {which} passphrase.",
            )
        raise WrongPassphrase()

    @db_errors
    def _database_key_id(self) -> str | None:
        with Session(self._engine) as session:
            row = session.get(MetaRow, VAULT_KEY_ID)
        return row.value if row else None

    @db_errors
    def _check_schema(self) -> None:
        found = schema_version(self._engine)
        if found > SCHEMA_VERSION:
            raise UnsupportedFormat(
                f"the store database was written by a newer fieldsync (schema {found})"
            )
        if found in (1, 2):  # schemas 2 and 3 only added tables
            create_schema(self._engine)
            # an administrator's store re-reads the feed once, for the receipts it now carries
            if found == 1 and self.identity.is_admin:
                settings.save(self, Pull(after=0, anchor_written=False))
        elif found != SCHEMA_VERSION:
            raise StoreCorrupted(f"the store database has an unknown schema version ({found})")
        with Session(self._engine) as session:
            session.exec(select(MetaRow).limit(1)).all()

    def close(self) -> None:
        self._engine.dispose()
        if self._lock >= 0:  # closing twice is harmless, as for the engine
            os.close(self._lock)
            self._lock = -1

    @contextlib.contextmanager
    def alone(self, doing: str) -> Iterator[None]:
        """Hold the store alone while its keys change: another process with this store open
        (an unfinished 'fieldsync new') would go on writing under the key a wipe destroys."""
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            fcntl.flock(self._lock, fcntl.LOCK_SH)  # a failed conversion dropped the shared one
            raise StoreBusy(
                f"another fieldsync command has this store open, so {doing} did not start",
                hint="Nothing was changed. Finish or close the other fieldsync command (an "
                "unfinished 'fieldsync new' keeps its draft), then run this one again.",
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_SH)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- passphrase ----------------------------------------------------------------------

    def change_passphrase(self, new_passphrase: str) -> None:
        """A new passphrase and a new vault key: everything under the vault key (index rows,
        drafts, settings, the epoch key) is re-encrypted, under a new epoch key too, in one
        transaction, and the old vault is overwritten before it is replaced. An old vault
        carved from the disk, with the old passphrase, opens nothing written afterwards."""
        for _ in self.passphrase_change(new_passphrase):
            pass

    def passphrase_change(self, new_passphrase: str) -> Iterator[str]:
        """``change_passphrase`` one durable step at a time, each named as it is done (a crash
        may fall between any two: ``open`` finishes or undoes what it finds)."""
        with self.alone("the passphrase change"):
            yield from self._passphrase_change(new_passphrase)

    def _passphrase_change(self, new_passphrase: str) -> Iterator[str]:
        old = self.epoch
        new_key = crypto.random_bytes(crypto.KEY_BYTES)
        sealed = vault.seal(
            new_passphrase, new_key, self.identity.secrets(), vault.KdfParams.fresh()
        )
        files.write_atomic(self.home / NEW_VAULT_FILE, sealed)
        yield "new vault written beside the old"
        new = epochs.fresh(old.number + 1)
        with self._settled_if_failed(new_key):
            slots = self._epoch_file.read()
            EpochFile(self._epoch_file.path, new_key).write(slots.index(None), new)
        yield "new epoch key written"
        with self._settled_if_failed(new_key):
            self._rekey(new_key, new)
            self._use_vault_key(new_key)
            self._epochs = {new.number: new}
        yield "database moved to the new keys"
        with self._settled_if_failed(new_key):
            self._settle_passphrase_change(pending=True)
        yield "old vault and old epoch key destroyed"

    @contextlib.contextmanager
    def _settled_if_failed(self, new_key: bytes) -> Iterator[None]:
        """A step of a passphrase change that fails (a full disk) leaves the change finished
        or undone, by which vault key the database is under, as the next open would: a commit
        may fail after it landed, and this process must go on under the keys on disk. If even
        that fails, the next open settles it. (Only errors: a generator closed between steps
        is a process killed there, and is left as it is.)"""
        try:
            yield
        except Exception:
            with contextlib.suppress(Exception):
                took = self._database_key_id() == _key_id(new_key)
                if took:
                    self._use_vault_key(new_key)
                self._settle_passphrase_change(pending=took)
            self._reload_epochs()
            raise

    @db_errors
    def _rekey(self, new_key: bytes, epoch: Epoch) -> None:
        """Re-encrypt, in one transaction, every row under the vault key or the epoch key.
        A row that no longer opens stays as it is: damaged before, damaged after."""
        with Session(self._engine) as session, session.begin():
            for own in session.exec(select(LocalWrapRow)).all():
                key = self.open_own_wrap(own)
                own.epoch, own.wrapped = epoch.number, epochs.wrap(epoch, own.entry_id, key)
                session.add(own)
            self._rekey_index(session, self.index_codec, IndexCodec(epoch.key))
            keyvalue.rekey_drafts(
                session, keyvalue.draft_key(self.epoch), keyvalue.draft_key(epoch)
            )
            keyvalue.rekey_settings(session, self.settings_key, keyvalue.settings_key(new_key))
            keyvalue.rekey_record_settings(session, self.epoch, epoch)
            session.merge(MetaRow(key=VAULT_KEY_ID, value=_key_id(new_key)))
            session.merge(MetaRow(key=EPOCH, value=str(epoch.number)))
        self.checkpoint()

    @staticmethod
    def _rekey_index(session: Session, old: IndexCodec, new: IndexCodec) -> None:
        for row in session.exec(select(RecordRow)).all():
            opened = old.open(row.record, row.heads, row.index_nonce, row.index_ct)
            if opened.problem is None:  # check --repair rebuilds a damaged one
                row.index_nonce, row.index_ct = new.seal(opened)
                session.add(row)

    def _settle_passphrase_change(self, pending: bool) -> None:
        """After a passphrase change took effect (``pending``: the new vault is still beside
        the old), or was undone: destroy the vault and the epoch slot the database no longer
        uses, each overwritten in place before it goes."""
        home = self.home
        if pending:
            if (home / NEW_VAULT_FILE).exists():  # not yet renamed over the old
                files.overwrite(home / VAULT_FILE)
                os.replace(home / NEW_VAULT_FILE, home / VAULT_FILE)
                durable.fsync_dir(home)
        else:
            files.destroy(home / NEW_VAULT_FILE)
        if not self._epoch_file.exists():
            return
        for index, slot in enumerate(self._epoch_file.read()):
            if slot is None:  # empty, or sealed under the other vault key
                self._epoch_file.write(index, None)

    # --- the store's own copies of content keys (under the epoch key) ---------------------

    @property
    def epoch(self) -> Epoch:
        """The epoch key new copies are wrapped under."""
        return max(self._epoch_keys().values(), key=lambda e: e.number)

    @property
    def index_codec(self) -> IndexCodec:
        """The record index is under the epoch key too, so a wipe destroys the forgotten
        records' summaries along with their content keys."""
        epoch = self.epoch
        if self._codec is None or self._codec[0] != epoch.number:
            self._codec = (epoch.number, IndexCodec(epoch.key))
        return self._codec[1]

    def _epoch_keys(self) -> dict[int, Epoch]:
        if self._epochs is None:
            self._epochs = self._load_epochs()
        return self._epochs

    def _reload_epochs(self) -> None:
        """After a key change that failed: forget the epoch keys held in memory and take them
        again from HOME/epochs and the database, which settles a change left half-done as the
        next open would. If reading fails too, the next use tries again."""
        self._epochs, self._codec = None, None
        with contextlib.suppress(Exception):
            self._epoch_keys()

    @db_errors
    def _load_epochs(self) -> dict[int, Epoch]:
        path = self._epoch_file.path
        with Session(self._engine) as session:
            in_use = set(session.exec(select(LocalWrapRow.epoch).distinct()).all())
            marked = session.get(MetaRow, EPOCH)  # drafts may be under it with no copies left
        if marked is not None and marked.value.isdigit():
            in_use.add(int(marked.value))
        if not self._epoch_file.exists():
            if in_use:
                raise StoreCorrupted(
                    f"the epoch key file {path} is missing: the keys of this store's versions "
                    "are gone",
                    hint="Restore the whole store folder from a backup.",
                )
            self._epoch_file.create(epochs.fresh(1))  # a store made before epochs, or a test's
        slots = self._epoch_file.read()
        live = [e for e in slots if e is not None]
        if live and in_use and max(e.number for e in live) < max(in_use):
            raise _rolled_back(path, max(e.number for e in live), max(in_use))
        if len(live) == epochs.SLOTS:  # a wipe was cut short: keep the key the rows use
            older, newer = sorted(live, key=lambda e: e.number)
            doomed = newer if older.number in in_use else older
            self._epoch_file.write(slots.index(doomed), None)
            live.remove(doomed)
        if not live:
            if in_use:
                raise StoreCorrupted(
                    f"the epoch key file {path} holds no key this vault opens: it is damaged, "
                    "or a copy from before a passphrase change was put back",
                    hint="Nothing was changed. Put back the epochs file that belongs to this "
                    "store, or restore the whole store folder from a backup.",
                )
            live = [epochs.fresh(1)]
            self._epoch_file.write(0, live[0])
        return {e.number: e for e in live}

    def new_epoch(
        self,
        kept: dict[str, bytes],
        also: Callable[[Session], None],
        forgotten: Set[str] = frozenset(),
    ) -> None:
        """Re-wrap ``kept`` (entry id -> content key), and only those, under a new epoch key,
        in one transaction with ``also``, re-sealing the record settings too but for those of
        ``forgotten`` records, which go; then destroy the old epoch key.

        The new key goes into the free slot first (durably); a crash before the commit leaves
        the old key in use and the new one is dropped at the next open, a crash after it the
        reverse (``_load_epochs``)."""
        old, old_codec = self.epoch, self.index_codec
        slots = self._epoch_file.read()
        new = epochs.fresh(old.number + 1)
        self._epoch_file.write(slots.index(None), new)
        try:
            with Session(self._engine) as session, session.begin():
                for row in session.exec(select(LocalWrapRow)).all():
                    if row.entry_id in kept:
                        row.epoch = new.number
                        row.wrapped = epochs.wrap(new, row.entry_id, kept[row.entry_id])
                        session.add(row)
                    else:
                        session.delete(row)
                also(session)
                session.flush()
                self._rekey_index(session, old_codec, IndexCodec(new.key))
                keyvalue.rekey_drafts(session, keyvalue.draft_key(old), keyvalue.draft_key(new))
                keyvalue.rekey_record_settings(session, old, new, forgotten)
                session.merge(MetaRow(key=EPOCH, value=str(new.number)))
            # Old frames of the WAL are not reused in place by a checkpoint; emptying it at
            # least leaves the database file the only live copy.
            self.checkpoint()
            self._epoch_file.write(slots.index(old), None)
        except Exception:
            # Which epoch the database is under is what it says, not what was hoped: the
            # commit may have failed, or landed before what follows it failed.
            self._reload_epochs()
            raise
        self._epochs = {new.number: new}

    def own_wrap(self, entry_id: str, content_key: bytes) -> LocalWrapRow:
        """This store's copy of a content key, under the current epoch key."""
        epoch = self.epoch
        return LocalWrapRow(
            entry_id=entry_id, epoch=epoch.number, wrapped=epochs.wrap(epoch, entry_id, content_key)
        )

    def open_own_wrap(self, row: LocalWrapRow) -> bytes:
        epoch = self._epoch_keys().get(row.epoch)
        if epoch is None:
            raise DecryptionFailed(
                f"the key of version {row.entry_id[:12]} is under epoch {row.epoch}, "
                "whose key this store no longer holds"
            )
        return epochs.unwrap(epoch, row.entry_id, row.wrapped)

    def own_wraps(self, session: Session, ids: list[str] | None = None) -> dict[str, LocalWrapRow]:
        """This store's copies of content keys, by entry id (all, or those of ``ids``)."""
        if ids is None:
            return {w.entry_id: w for w in session.exec(select(LocalWrapRow)).all()}
        found: dict[str, LocalWrapRow] = {}
        for some in in_chunks(ids):
            rows = session.exec(select(LocalWrapRow).where(col(LocalWrapRow.entry_id).in_(some)))
            found.update((w.entry_id, w) for w in rows.all())
        return found

    @db_errors
    def _move_own_wraps(self) -> None:
        """Move a store written before epochs to them: each sealed box to this store's reader
        key becomes a copy under the epoch key, and a device's sealed boxes to its own box key
        go (an administrator's, to the organisation's key, also travel to the server)."""
        reader = self.reader.public.hex()
        self._epoch_keys()
        with Session(self._engine) as session, session.begin():
            if session.get(MetaRow, OWN_WRAPS) is not None:
                return
            sealed = session.exec(select(WrapRow).where(WrapRow.reader == reader)).all()
            for row in sealed:
                key = self.reader.unwrap(row.wrapped, what=f"version {row.entry_id[:12]}")
                session.merge(self.own_wrap(row.entry_id, key))
                if not self.identity.is_admin:
                    session.delete(row)
            self._rekey_index(session, IndexCodec(self._vault_key), self.index_codec)
            before = crypto.derive_key(self._vault_key, keyvalue.LABEL_DRAFT)
            keyvalue.rekey_drafts(session, before, keyvalue.draft_key(self.epoch))
            session.add(MetaRow(key=OWN_WRAPS, value="epochs"))
            session.merge(MetaRow(key=EPOCH, value=str(self.epoch.number)))
        self.checkpoint()

    def checkpoint(self) -> None:
        """Push what the WAL holds into the database file and empty it. A checkpoint cannot
        run inside a transaction, and every SQLAlchemy statement begins one: the raw
        connection."""
        raw = self._engine.raw_connection()
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()

    # --- writing versions ----------------------------------------------------------------

    @contextlib.contextmanager
    def writer(self) -> Iterator[Writer]:
        """One transaction: everything appended inside commits together, or not at all."""
        self._epoch_keys()  # read before the transaction takes the lock
        try:
            with Session(self._engine, autoflush=False) as session, session.begin():
                writer = Writer(
                    session,
                    identity=self.identity,
                    reader_keys=self.reader_keys(),
                    readers=self.readers(),
                    own_wrap=self.own_wrap,
                    index_codec=self.index_codec,
                    now_ms=self.now_ms,
                    reads_everything=orgkeys.reads_everything(self),
                    refusal=orgkeys.why_not_signing(self),
                )
                yield writer
                writer.finish()
        except DatabaseError as exc:
            raise database_error(self.home / DB_FILE, exc) from exc

    # --- reading -------------------------------------------------------------------------

    @db_errors
    def index(self) -> list[IndexEntry]:
        """Every record's index row, oldest record first (plain columns: no ORM objects)."""
        columns = (RecordRow.record, RecordRow.heads, RecordRow.index_nonce, RecordRow.index_ct)
        codec = self.index_codec
        with Session(self._engine) as session:
            rows = session.exec(select(*columns).order_by(col(RecordRow.created_ms))).all()
        with gc_paused():  # 100,000 new objects would set off collections that find nothing
            return [codec.open(*row) for row in rows]

    @db_errors
    def index_entry(self, record: str) -> IndexEntry:
        codec = self.index_codec
        with Session(self._engine) as session:
            row = session.get(RecordRow, record)
        if row is None:
            if record in self.forgotten_records():
                raise RecordNotFound(
                    f"record {record} was delivered and then wiped from this device",
                    hint="The organisation holds it; ask an administrator if you need it.",
                )
            raise RecordNotFound(f"no record {record} in this store")
        return codec.open(row.record, row.heads, row.index_nonce, row.index_ct)

    @db_errors
    def record_ids(self) -> list[str]:
        """Every record id this store holds (only the ids: nothing is decrypted)."""
        with Session(self._engine) as session:
            return list(session.exec(select(RecordRow.record)).all())

    @db_errors
    def resolve_record(self, prefix: str) -> str:
        """The full record id for a unique prefix (as ``git`` does for commits)."""
        prefix = prefix.strip().lower()
        if len(prefix) < 4:
            raise RecordNotFound(f"{prefix!r} is too short to name a record (use 4+ characters)")
        with Session(self._engine) as session:
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            matches = session.exec(
                select(RecordRow.record)
                .where(col(RecordRow.record).like(f"{escaped}%", escape="\\"))
                .limit(2)
            ).all()
        if not matches:
            raise RecordNotFound(f"no record {prefix} in this store")
        if len(matches) > 1:
            raise RecordNotFound(
                f"{prefix} names more than one record", hint="Give more characters of the id."
            )
        return matches[0]

    @db_errors
    def versions(self, record: str) -> list[Version]:
        """Every version of a record, verified and opened, oldest first (by clock)."""
        found = self.versions_of([record]).get(record)
        if not found:
            raise RecordNotFound(f"no record {record} in this store")
        return found

    @db_errors
    def versions_of(self, records: list[str]) -> dict[str, list[Version]]:
        """``versions`` for many records at once (a pull settles hundreds in one go)."""
        rows: list[EntryRow] = []
        with Session(self._engine) as session:
            for some in in_chunks(records):
                rows += session.exec(select(EntryRow).where(col(EntryRow.record).in_(some))).all()
            wraps = self.own_wraps(session, [r.id for r in rows])
        found: dict[str, list[Version]] = {}
        for row in rows:
            found.setdefault(row.record, []).append(self.open_version(row, wraps.get(row.id)))
        for versions in found.values():
            versions.sort(key=lambda v: (v.entry.header.hlc, v.entry.header.author, v.id))
        return found

    @db_errors
    def index_entries(self, records: list[str]) -> dict[str, IndexEntry]:
        """``index_entry`` for many records at once; records without a row are left out."""
        columns = (RecordRow.record, RecordRow.heads, RecordRow.index_nonce, RecordRow.index_ct)
        found: dict[str, IndexEntry] = {}
        codec = self.index_codec
        with Session(self._engine) as session:
            for some in in_chunks(records):
                for row in session.exec(select(*columns).where(col(RecordRow.record).in_(some))):
                    found[row[0]] = codec.open(*row)
        return found

    def session(self) -> Session:
        """A read session on the database (for this package's own modules)."""
        return Session(self._engine)

    def open_version(self, row: EntryRow, wrapped: LocalWrapRow | None) -> Version:
        """Verify a stored entry against its row and open it with this store's copy of its
        key."""
        try:
            entry = parse_entry(row.raw)
            header = entry.header
            if entry.id != row.id:
                raise IntegrityError(f"version {row.id[:12]} does not match its id")
            if (header.record, header.author, header.seq) != (row.record, row.author, row.seq):
                raise IntegrityError(f"version {row.id[:12]} is filed under the wrong record")
        except IntegrityError as exc:
            placeholder = damaged_entry(row)
            return Version(placeholder, None, f"version {row.id[:12]} is damaged: {exc.message}")
        if wrapped is None:
            return Version(entry, None, f"this device holds no key for version {entry.id[:12]}")
        try:
            key = self.open_own_wrap(wrapped)
            return Version(entry, Body.decode(entry.open(key)))
        except IntegrityError as exc:
            return Version(entry, None, f"version {entry.id[:12]} cannot be read: {exc.message}")

    # --- readers -----------------------------------------------------------------------

    def readers(self) -> list[bytes]:
        """Whose box keys every new entry's content key is wrapped for: this device's, and the
        organisation's once the device is enrolled (an administrator's store: the org's)."""
        state = orgkeys.followed(self)  # the newest read key the organisation's log names
        org = [bytes.fromhex(state.read_key.key)] if state is not None else []
        return org if self.identity.org_read is not None else [self.identity.box.public, *org]

    def reader_keys(self) -> list[crypto.BoxPair]:
        """The box keys versions served to this store are sealed for, newest first: every
        read key the organisation has had in an administrator's store, else the device's."""
        secrets = orgkeys.read_keys(self)
        return [s.pair for s in reversed(secrets)] if secrets else [self.identity.box]

    def forgotten_records(self) -> set[str]:
        return set((settings.load(self, Forgotten) or Forgotten()).records)

    # --- the index, rebuilt ----------------------------------------------------------

    @db_errors
    def entry_records(self) -> list[str]:
        """Every record that has at least one entry, whatever the index says."""
        with Session(self._engine) as session:
            return list(session.exec(select(EntryRow.record).distinct()).all())

    @db_errors
    def replace_index(
        self,
        record: str,
        versions: list[Version],
        shown: Body,
        summary: str,
        *,
        conflict: bool = False,
    ) -> None:
        """Rewrite a record's index row from its versions (the entries are the truth);
        ``shown`` is the body displayed (a provisional merge when there are several heads)."""
        heads = heads_of(versions)
        clocks = [v.entry.header.hlc for v in versions if v.entry.raw]
        created, updated = min(clocks), max(clocks)
        row = self.index_codec.seal_row(
            IndexEntry(
                record=record,
                heads=tuple(heads),
                form=shown.form,
                summary=summary,
                created=created,
                updated=updated,
                versions=len(versions),
                attachments=len(shown.attachments),
                conflict=conflict,
            )
        )
        with Session(self._engine) as session, session.begin():
            session.merge(row)


def _discard_unfinished_init(home: Path) -> None:
    """A database with no vault and no entries is what a crashed ``init`` leaves behind."""
    engine = make_engine(home / DB_FILE)
    try:
        with Session(engine) as session:
            count = session.exec(select(func.count()).select_from(EntryRow)).one()
    except DatabaseError:
        count = -1
    finally:
        engine.dispose()
    if count != 0:
        raise StoreWiped(
            f"the store in {home} has no vault file: its keys were destroyed or removed",
            hint="Nothing was changed. Use another --home, or restore the vault from a backup.",
        )
    files.destroy(home / EPOCHS_FILE)
    for name in (DB_FILE, f"{DB_FILE}-wal", f"{DB_FILE}-shm"):
        (home / name).unlink(missing_ok=True)


def _unlock(path: Path, passphrase: str) -> tuple[bytes, Identity]:
    try:
        vault_key, secrets = vault.unlock(path.read_bytes(), passphrase)
    except MalformedData as exc:
        raise StoreCorrupted(
            f"the vault file {path} is damaged ({exc.message})",
            hint="Restore the vault file from a backup; without it nothing can be read.",
        ) from exc
    try:
        return vault_key, Identity.from_secrets(secrets)
    except KeyError as exc:
        raise StoreCorrupted(f"the vault file {path} lacks the device keys") from exc


def _rolled_back(path: Path, found: int, needed: int) -> StoreCorrupted:
    """A file older than the database: a copy from before a wipe, put back. Its key opens what
    that wipe destroyed (the copies left in freed pages), so the store does not go on under it;
    a wipe cut short leaves the file one epoch ahead of the database, never behind."""
    return StoreCorrupted(
        f"the epoch key file {path} is older than the store database: it holds epoch {found}, "
        f"and the database is under epoch {needed}. An older copy of the file was put back "
        "(after a wipe, its key opens what the wipe destroyed), so the store was not opened",
        hint="Nothing was changed. Put back the epochs file that belongs to this store, or "
        "restore the whole store folder (all its files together) from a backup.",
    )


def _key_id(vault_key: bytes) -> str:
    """Names a vault key without revealing it (which one the database is under)."""
    return crypto.derive_key(vault_key, LABEL_VAULT_KEY_ID).hex()


def _shared_lock(home: Path) -> int:
    """A shared lock on ``HOME/store.lock`` for as long as a Store is open; changing the keys
    takes it alone (``Store.alone``), and an open meanwhile is refused as busy."""
    fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise StoreBusy(
            "another fieldsync command is changing this store's keys (a wipe or a new passphrase)",
            hint="Nothing was changed. Run this command again once it has finished.",
        ) from exc
    return fd


def wipe(home: Path) -> list[str]:
    """Destroy the store's keys, then remove what remains; returns what was removed."""
    removed = []
    for name in (VAULT_FILE, NEW_VAULT_FILE, EPOCHS_FILE):
        if (home / name).exists():
            files.destroy(home / name)
            removed.append(str(home / name))
    for name in (DB_FILE, f"{DB_FILE}-wal", f"{DB_FILE}-shm", LOCK_FILE):
        path = home / name
        if path.exists():
            path.unlink()
            removed.append(str(path))
    blobs = home / BLOBS_DIR
    if blobs.exists():
        shutil.rmtree(blobs)
        removed.append(str(blobs))
    return removed
