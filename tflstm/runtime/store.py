"""Keyed state stores for `StreamPool`: SQLite on disk (the default), or memory.

A store maps stream keys to packed states (`tflstm.runtime.state.pack_state`:
the raw state bytes, 1,536 per key for the digits float32 model), each stored
with the weights fingerprint of the model it belongs to, so a pool refuses to
resume a key from another model's state. Changes arrive in batches, each
applied atomically (`write`).

Keys are `str` (at most `MAX_KEY_BYTES` in UTF-8), `int` (signed 64-bit) or
`bytes` (at most `MAX_KEY_BYTES`): three kinds that never collide (1, "1" and
b"1" are three keys). numpy integers are taken as ints; anything else (bool,
float, tuple, None...) is refused by `check_key`.

`SQLiteStore` layout (one file plus SQLite's `-wal` file while it is open):

    models(id INTEGER PRIMARY KEY, fingerprint TEXT UNIQUE)
    states(key PRIMARY KEY, model -> models.id, checksum BLOB, state BLOB)

`checksum` is a 16-byte BLAKE2b of the model's fingerprint, the key and the
state, so a damaged row, a row moved to another key or relabelled to another
model is refused with `StateError` when it is read.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np

from tflstm.runtime.errors import StateError

Key = str | int | bytes
"""A stream key of a pool and a store."""
MAX_KEY_BYTES = 1024
"""Longest `str` (in UTF-8) or `bytes` key."""
_INT64 = (-(2**63), 2**63 - 1)


def check_key(key: object) -> Key:
    """`key` as a store key: str, int or bytes as they are, numpy integers as int.

    Raises:
        TypeError: any other type (bool, float, tuple, None...).
        ValueError: an int outside signed 64-bit, a str or bytes key over
            `MAX_KEY_BYTES`, or a str that is not valid Unicode (lone surrogates).
    """
    if isinstance(key, np.integer):
        key = int(key)
    kind = type(key)
    if kind is int:
        if not _INT64[0] <= key <= _INT64[1]:
            raise ValueError(f"An int key must fit in signed 64 bits, got one of {key.bit_length()} bits.")
        return key
    if kind is str:
        try:
            size = len(key.encode("utf-8"))
        except UnicodeEncodeError as err:
            raise ValueError(f"A str key must be valid Unicode, got {key!r:.80} ({err.reason}).") from None
    elif kind is bytes:
        size = len(key)
    else:
        raise TypeError(f"A stream key must be a str, an int or bytes, got {kind.__name__} {key!r:.80}.")
    if size > MAX_KEY_BYTES:
        raise ValueError(f"A {kind.__name__} key may hold at most {MAX_KEY_BYTES} bytes, got {size}.")
    return key


def _key_bytes(key: Key) -> bytes:
    """An unambiguous byte form of a checked key (for checksums)."""
    if type(key) is int:
        return b"i" + key.to_bytes(8, "little", signed=True)
    if type(key) is str:
        return b"s" + key.encode("utf-8")
    return b"b" + key


def row_checksum(fingerprint: str, key: Key, state: bytes) -> bytes:
    """16-byte BLAKE2b over the model fingerprint, the key and the packed state."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (fingerprint.encode("ascii"), _key_bytes(key), state):
        digest.update(len(part).to_bytes(4, "little"))
        digest.update(part)
    return digest.digest()


class StoreError(StateError):
    """The store itself failed: cannot be opened, read or written (a key's damaged row is a plain StateError)."""


class StoredState(NamedTuple):
    """One key's stored state: the fingerprint of its model and its packed bytes."""

    fingerprint: str
    state: bytes


class StateStore(Protocol):
    """What `StreamPool` needs from a state store. Every method may be called from any thread."""

    def read(self, key: Key) -> StoredState | None:
        """The stored state of `key`, None if there is none.

        Raises:
            StateError: the stored row is damaged (StoreError: the store is unreadable).
        """

    def write(self, fingerprint: str, changes: Mapping[Key, bytes | None], *, durable: bool = True) -> None:
        """Applies `changes` atomically: key -> new packed state of the model `fingerprint`, or None to delete.

        With `durable`, the changes survive a crash of the machine once this
        returns; without, a crash of the process (not of the machine) only.

        Raises:
            StoreError: nothing was written (the store is unwritable, full...).
        """

    def close(self) -> None:
        """Releases the store; a closed store refuses to be used."""


class MemoryStore:
    """States in a dict: for tests and ephemeral pools (gone with the process)."""

    def __init__(self) -> None:
        self._rows: dict[Key, StoredState] = {}
        self._lock = threading.Lock()

    def read(self, key: Key) -> StoredState | None:
        """The stored state of `key`, None if there is none."""
        with self._lock:
            return self._rows.get(key)

    def write(self, fingerprint: str, changes: Mapping[Key, bytes | None], *, durable: bool = True) -> None:
        """Applies `changes` (None deletes) at once; `durable` means nothing here."""
        with self._lock:
            for key, state in changes.items():
                if state is None:
                    self._rows.pop(key, None)
                else:
                    self._rows[key] = StoredState(fingerprint, bytes(state))

    def __len__(self) -> int:
        return len(self._rows)

    def close(self) -> None:
        """Nothing to release."""


APPLICATION_ID = 0x746C7331
"""SQLite `application_id` of a tflstm state store ("tls1")."""
SCHEMA_VERSION = 1
_SCHEMA = (
    "CREATE TABLE models (id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL UNIQUE)",
    "CREATE TABLE states (key NOT NULL PRIMARY KEY, model INTEGER NOT NULL REFERENCES models(id), "
    "checksum BLOB NOT NULL, state BLOB NOT NULL)",
    f"PRAGMA application_id = {APPLICATION_ID}",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)
_UPSERT = (
    "INSERT INTO states (key, model, checksum, state) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
    "model = excluded.model, checksum = excluded.checksum, state = excluded.state"
)
_SELECT = "SELECT models.fingerprint, states.checksum, states.state FROM states LEFT JOIN models ON models.id = states.model WHERE states.key = ?"
_PAGE_SIZES = (4096, 8192, 16384, 32768, 65536)
_ROW_OVERHEAD = 64
"""Bytes a row takes besides its state: key, checksum, record header, cell pointer (estimate)."""


def page_size_for(state_bytes: int) -> int:
    """The smallest SQLite page size that stores rows of `state_bytes` with at most 25% waste.

    A table page holds whole rows (larger ones spill to overflow pages), so a
    row just over half a page would waste almost half of it.
    """
    row = state_bytes + _ROW_OVERHEAD
    for size in _PAGE_SIZES:
        usable = size - 8
        if row <= size - 35 and usable / (usable // row) <= 1.25 * row:
            return size
    return _PAGE_SIZES[-1]


class SQLiteStore:
    """States in one SQLite file (stdlib `sqlite3`), written ahead (WAL), one transaction per batch.

    Durability: a `write` commits one transaction; a crash in the middle of one
    leaves the previous contents (SQLite's write-ahead log). A durable write
    (`synchronous=FULL`: the log is fsynced) survives a crash of the machine
    once it returned, and makes every earlier write durable too; a non-durable
    one (`synchronous=NORMAL`, no fsync) survives a crash of the process. The
    file is locked for this process while the store is open (another process
    gets `StoreError`).

    Args:
        path: the database file; created when missing.
        state_bytes: packed size of one state, used to choose the page size of
            a new file (rows that do not fit pages well would waste up to half
            of them). Default: None (8 KiB pages).
        timeout: seconds to wait for another process's lock. Default: 1.0.

    Raises:
        StoreError (a StateError): not a tflstm state store, damaged, of a newer
            schema, in use by another process, or unreadable (chained to SQLite's
            error).
    """

    def __init__(self, path: str | Path, *, state_bytes: int | None = None, timeout: float = 1.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._model_ids: dict[str, int] = {}
        try:
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as err:
            raise StoreError(f"Cannot open the state store {self.path}: {err}.") from err
        self._db.text_factory = bytes  # a damaged row's text never fails to decode inside sqlite3
        try:
            self._open(8192 if state_bytes is None else page_size_for(state_bytes))
        except BaseException:
            self._db.close()
            raise

    def _open(self, page_size: int) -> None:
        db = self._db
        try:
            db.execute("PRAGMA locking_mode = EXCLUSIVE")  # one process at a time; no shared-memory index
            if db.execute("PRAGMA page_count").fetchone()[0] == 0:
                db.execute(f"PRAGMA page_size = {int(page_size)}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA journal_size_limit = 67108864")  # the WAL shrinks back to 64 MiB after a checkpoint
            db.execute("BEGIN EXCLUSIVE")  # takes the file lock now: a second process fails here
            application, version = db.execute("PRAGMA application_id").fetchone()[0], db.execute("PRAGMA user_version").fetchone()[0]
            tables = {row[0].decode("utf-8", "replace") for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            fresh = application == 0 and version == 0 and not tables
            for statement in _SCHEMA if fresh else ():
                db.execute(statement)
            db.execute("COMMIT")
            if not fresh:
                self._check_schema(application, version, tables)
            self._model_ids = {fingerprint.decode("ascii", "replace"): id_
                               for id_, fingerprint in db.execute("SELECT id, fingerprint FROM models")}
        except sqlite3.Error as err:
            if "locked" in str(err):
                raise StoreError(
                    f"The state store {self.path} is in use by another process (one pool per store at a time)."
                ) from err
            raise StoreError(f"The state store {self.path} is damaged or unreadable: {err}.") from err

    def _check_schema(self, application: int, version: int, tables: set[str]) -> None:
        if application != APPLICATION_ID:
            raise StoreError(f"{self.path} is an SQLite file but not a tflstm state store (application_id {application:#x}).")
        if version != SCHEMA_VERSION:
            raise StoreError(f"{self.path} is a state store of schema {version}; this tflstm reads schema {SCHEMA_VERSION}.")
        if not {"models", "states"} <= tables:
            raise StoreError(f"The state store {self.path} is damaged: its tables are {sorted(tables)}.")

    def read(self, key: Key) -> StoredState | None:
        """The stored state of `key`, None if there is none.

        Raises:
            StateError: the row is damaged (checksum, types, model reference).
            StoreError: the file is unreadable.
        """
        try:
            with self._lock:
                row = self._connection().execute(_SELECT, (key,)).fetchone()
        except sqlite3.Error as err:
            raise StoreError(f"Cannot read key {key!r} from the state store {self.path}: {err}.") from err
        if row is None:
            return None
        fingerprint, checksum, state = row
        if not (isinstance(fingerprint, bytes) and isinstance(state, bytes) and isinstance(checksum, bytes)
                and fingerprint.isascii() and row_checksum(fingerprint.decode("ascii"), key, state) == checksum):
            raise StateError(f"The stored state of key {key!r} in {self.path} is damaged: its checksum does not match.")
        return StoredState(fingerprint.decode("ascii"), state)

    def write(self, fingerprint: str, changes: Mapping[Key, bytes | None], *, durable: bool = True) -> None:
        """Applies `changes` in one transaction: key -> packed state of model `fingerprint`, or None to delete.

        `durable` fsyncs the log at the commit (see the class docstring). Default: True.

        Raises:
            StoreError: nothing was written (chained to SQLite's error).
        """
        puts, deletes = [], []
        for key, state in changes.items():
            if state is None:
                deletes.append((key,))
            else:
                puts.append((key, state))
        with self._lock:
            db = self._connection()
            try:
                db.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
                db.execute("BEGIN IMMEDIATE")
                model = self._model_ids.get(fingerprint)
                if model is None and puts:
                    model = db.execute("INSERT INTO models (fingerprint) VALUES (?)", (fingerprint,)).lastrowid
                db.executemany(_UPSERT, ((key, model, row_checksum(fingerprint, key, state), state) for key, state in puts))
                db.executemany("DELETE FROM states WHERE key = ?", deletes)
                db.execute("COMMIT")
            except sqlite3.Error as err:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise StoreError(f"Cannot write {len(changes)} states to the state store {self.path}: {err}.") from err
            if model is not None:
                self._model_ids[fingerprint] = model

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"The state store {self.path} is closed.")
        return self._db

    def close(self) -> None:
        """Checkpoints the WAL into the file and closes it (the `-wal` file goes away)."""
        with self._lock:
            if self._db is None:
                return
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass  # the WAL stays; SQLite replays it on the next open
            finally:
                self._db.close()
                self._db = None


def open_store(store: StateStore | str | Path | None, state_bytes: int) -> tuple[StateStore, bool]:
    """(store, whether it was opened here): None -> `MemoryStore`, a path -> `SQLiteStore` for states of
    `state_bytes`, else `store` itself, checked to have the `StateStore` methods."""
    if store is None:
        return MemoryStore(), True
    if isinstance(store, (str, Path)):
        return SQLiteStore(store, state_bytes=state_bytes), True
    missing = [name for name in ("read", "write", "close") if not callable(getattr(store, name, None))]
    if missing:
        raise TypeError(f"`store` must be a path, None or a StateStore; {type(store).__name__} lacks {missing}.")
    return store, False
