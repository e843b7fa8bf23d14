"""`StreamPool`: keyed streams of one model for many threads, within a memory budget, backed by a state store.

A pool keeps at most `max_resident` streams in memory, each in a slot: a
stream of the model (`StreamingModel.stream`) that the pool reuses for one key
after another, so admitting a key never creates an interpreter once the slots
exist. A key that is not resident is restored from the store on its next step;
the least recently used resident key makes room (its state is "spilled":
packed, kept in memory until the next batch write, then written to the store).

Where a key's latest state is, always exactly one of (under the pool lock):
its resident entry; `_spilled` (packed, newest, not written yet); the batch
being written (`_writing`); the store; nowhere (the zero state). `None` in
`_spilled` or `_writing` means "deleted": the key starts from the zero state.

Locks, in the only order they are taken: `_write_lock` (one batch write at a
time, in order) -> `_lock` (the pool's maps) -> entries' locks (one key's
steps, its load, its eviction) -> the model's and the store's own locks. A
thread holding an entry's lock never waits for `_lock` (it releases the entry
first), so flush and close may wait for entries while holding `_lock`; eviction
and sweeps only try victims' locks. Only `step_many` holds several entries'
locks at once, taken in one global order; flush and close hold one at a time.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tflstm.runtime.errors import StateError
from tflstm.runtime.model import StreamingModel
from tflstm.runtime.state import PackedLayout
from tflstm.runtime.store import Key, StateStore, StoredState, check_key, open_store
from tflstm.runtime.streams import Stream

log = logging.getLogger("tflstm.pool")
_KEY_TYPES = frozenset((str, int, bytes))
_ABSENT = object()
_monotonic = time.monotonic


class NonFiniteStateError(StateError):
    """A step made keys' states non-finite (NaN/Inf): finite inputs too large for float32 arithmetic.

    Those keys were reset to the zero state. Attributes: `keys`, the keys
    reset; `outputs`, the results of the other keys of a `step_many` call,
    whose steps stand.
    """

    def __init__(self, keys: list[Key], outputs: dict[Key, Any]) -> None:
        super().__init__(
            f"Stepping key(s) {keys!r:.200} made their LSTM state non-finite (NaN/Inf): an input too large for "
            "float32 arithmetic. They were reset to the zero state."
        )
        self.keys, self.outputs = keys, outputs


def _finite(y: Any) -> bool:
    """Whether a float output (array, or dict of arrays) is finite; cheap, and only ever wrong towards False.

    A dot product is NaN/Inf when an element is; it also overflows for
    magnitudes beyond 1e19, which then costs one look at the state.
    """
    if type(y) is np.ndarray:
        if y.dtype.kind != "f":
            return True
        flat = y if y.ndim == 1 else y.reshape(-1)
        return math.isfinite(flat.dot(flat))
    if type(y) is dict:
        return all(_finite(value) for value in y.values())
    return True  # a postprocessed result: the check when the state is stored covers it


class _Slot:
    """The key of a pool's slot stream in its model: unique by identity, so it never meets a user's key."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<StreamPool slot {id(self):#x}>"


class _Entry:
    """One resident key: its slot stream, its lock, whether it changed since it was last stored."""

    __slots__ = ("slot", "step", "lock", "live", "dirty", "used")

    def __init__(self, slot: Stream | None) -> None:
        self.slot = slot
        self.step = None if slot is None else slot.step
        self.lock = threading.Lock()
        self.live = True  # False once evicted, removed or closed: whoever holds it must look the key up again
        self.dirty = False  # stepped, reset or loaded from an unwritten batch since it was last stored
        self.used = _monotonic()


class StreamPool:
    """Keyed streams of one `StreamingModel`, safe from many threads, within a memory budget.

    Every key (str, int or bytes: see `tflstm.runtime.store.check_key`) has its
    own LSTM state, starting from the zero state. Steps of one key are
    serialized, in the order their calls take its lock; steps of different keys
    never wait for each other when their slots have interpreters of their own
    (see `StreamingModel`'s `streams`) and take turns on the shared interpreter
    otherwise. The interpreters release the GIL while they invoke, but the Python
    around a small model's step does not, so threads mostly add concurrency.
    Every output equals what a serial run of that key's steps gives.

    Durability: `flush()` writes every state changed since the last flush to
    the store in one durable transaction; when it returns, those states survive
    a crash of the process or of the machine. A crash loses at most the steps
    after the last flush that had not been written yet (spilled states are
    written in batches too, durable against a crash of the process), and never
    mixes keys. `close()` flushes. A new pool on the same store resumes every
    key from its stored state.

    Args:
        model: the model; its own state and other streams stay usable beside
            the pool. Models that let NaN/Inf inputs through are refused (their
            states could not be stored).
        store: where states go: a path (an `SQLiteStore` the pool opens and
            closes), a `StateStore`, or None (a `MemoryStore`: ephemeral).
            Default: None.
        max_resident: most keys kept in memory; the least recently used is
            spilled to make room. Default: 10,000.
        idle_ttl: seconds after which an idle key leaves memory (its state is
            kept: spilled like an evicted one; its slot freed), checked in a
            background thread every quarter of it; None: never. Default: None.
        flush_interval: seconds between automatic flushes by a background
            thread; None: only `flush()`/`close()`. Default: None.
        preprocess: callable(key, x) -> x applied to every input, outside the
            key's lock; must be thread-safe. Default: None.
        postprocess: callable(key, y) -> result applied to every output, outside
            the key's lock; must be thread-safe. Default: None.
        spill_batch: spilled states written per transaction. Default: 256.

    Raises:
        StateError: the store cannot be opened (see `SQLiteStore`).
    """

    def __init__(
        self,
        model: StreamingModel,
        *,
        store: StateStore | str | Path | None = None,
        max_resident: int = 10_000,
        idle_ttl: float | None = None,
        flush_interval: float | None = None,
        preprocess: Callable[[Key, Any], Any] | None = None,
        postprocess: Callable[[Key, Any], Any] | None = None,
        spill_batch: int = 256,
    ) -> None:
        if not isinstance(model, StreamingModel):
            raise TypeError(f"`model` must be a StreamingModel, got {type(model).__name__}.")
        if model.allow_nonfinite:
            raise ValueError("StreamPool needs a model that refuses NaN/Inf inputs (allow_nonfinite=False): "
                             "a state poisoned by them cannot be stored.")
        for name, value in (("max_resident", max_resident), ("spill_batch", spill_batch)):
            if type(value) is not int or value < 1:
                raise ValueError(f"`{name}` must be an int >= 1, got {value!r}.")
        for name, value in (("idle_ttl", idle_ttl), ("flush_interval", flush_interval)):
            if value is not None and not (isinstance(value, (int, float)) and 0 < value < float("inf")):
                raise ValueError(f"`{name}` must be a number of seconds > 0 or None, got {value!r}.")
        for name, value in (("preprocess", preprocess), ("postprocess", postprocess)):
            if value is not None and not callable(value):
                raise TypeError(f"`{name}` must be callable(key, value) or None, got {type(value).__name__}.")
        self.model = model
        self.max_resident = max_resident
        self.idle_ttl = idle_ttl
        self._layout = PackedLayout(model.metadata.states)  # one stream's state (a row of a batched model)
        self._fingerprint = model.metadata.fingerprint
        self._store, self._owns_store = open_store(store, self._layout.nbytes)
        self._preprocess, self._postprocess = preprocess, postprocess
        self._spill_batch = spill_batch
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._resident: OrderedDict[Key, _Entry] = OrderedDict()  # least recently used first
        self._free: list[Stream] = []
        self._slots = 0  # slot streams alive or being created (resident + free)
        self._spilled: dict[Key, bytes | None] = {}
        self._writing: Mapping[Key, bytes | None] = {}
        self._closed = False
        self._stop = threading.Event()
        self._maintenance: threading.Thread | None = None
        if idle_ttl is not None or flush_interval is not None:
            self._maintenance = threading.Thread(
                target=self._maintain, args=(idle_ttl, flush_interval), name="tflstm-pool", daemon=True
            )
            self._maintenance.start()

    # ---- stepping -------------------------------------------------------------------------
    def step(self, key: Key, x: Any) -> Any:
        """One time step of `key`'s stream (created at the zero state, or restored from the store).

        Args:
            key: the stream's key.
            x: float [features], one time step (as `StreamingModel.step` takes).

        Returns:
            The output, as `StreamingModel.step` returns it (through `postprocess`).

        Raises:
            InputError: `x` is refused; the key's state did not change.
            NonFiniteStateError: `x` was finite but so large that the state
                became NaN/Inf; the key was reset to the zero state.
            StateError: the key's stored state is damaged or another model's,
                the store failed to take spilled states (nothing moved then),
                or the pool is closed.
            TypeError, ValueError: a key that is not a str, int or bytes, or
                out of range (`check_key`).
        """
        if len(self._spilled) >= self._spill_batch:  # before stepping: a store failure then moves nothing
            self._write_out(resident=False)
        if self._preprocess is not None:
            x = self._preprocess(key, x)
        entry = self._acquire(key)
        try:
            y = entry.step(x)
            entry.dirty = True
            entry.used = _monotonic()
            if not _finite(y) and self._reset_if_poisoned(key, entry):
                raise NonFiniteStateError([key], {})
        finally:
            entry.lock.release()
        return y if self._postprocess is None else self._postprocess(key, y)

    def step_many(self, inputs: Mapping[Key, Any]) -> dict[Key, Any]:
        """One time step of several keys; all or nothing.

        Every input is checked before any key's state moves: when one is refused
        (`InputError`), no key has advanced. Batched models step up to
        `batch_size` keys per invoke. When a finite but huge input makes a
        key's state NaN/Inf, that key is reset to the zero state and
        `NonFiniteStateError` is raised after the others stepped (their
        outputs are on its `outputs`).

        Args:
            inputs: key -> float [features], at most `max_resident` keys.

        Returns:
            key -> output, as `step` would return for each.
        """
        if not isinstance(inputs, Mapping):
            raise TypeError(f"`inputs` must be a mapping key -> x, got {type(inputs).__name__}.")
        keys = [check_key(key) for key in inputs]
        if len(set(keys)) != len(keys):
            raise ValueError("`inputs` names a key twice (a numpy integer and an equal int are one key).")
        if len(keys) > self.max_resident:
            raise ValueError(f"step_many takes at most max_resident={self.max_resident} keys, got {len(keys)}.")
        if len(self._spilled) >= self._spill_batch:
            self._write_out(resident=False)
        values = list(inputs.values())
        if self._preprocess is not None:
            values = [self._preprocess(key, x) for key, x in zip(keys, values)]
        entries = self._acquire_all(keys)
        try:
            by_slot = self.model.step_many({entry.slot.key: x for entry, x in zip(entries, values)})
            now = _monotonic()
            for entry in entries:
                entry.dirty = True
                entry.used = now
            outputs = {key: by_slot[entry.slot.key] for key, entry in zip(keys, entries)}
            poisoned = [key for key, entry in zip(keys, entries)
                        if not _finite(outputs[key]) and self._reset_if_poisoned(key, entry)]
        finally:
            for entry in entries:
                entry.lock.release()
        if self._postprocess is not None:
            outputs = {key: self._postprocess(key, y) for key, y in outputs.items() if key not in poisoned}
        if poisoned:
            raise NonFiniteStateError(poisoned, {key: y for key, y in outputs.items() if key not in poisoned})
        return outputs

    def reset(self, key: Key) -> None:
        """Returns `key` to the zero state (stored as such at the next flush)."""
        key = check_key(key)
        while True:
            with self._lock:
                self._check_open()
                entry = self._resident.get(key)
                if entry is None:
                    self._spilled[key] = None
                    return
            with entry.lock:
                if entry.live:
                    entry.slot.reset()
                    entry.dirty = True
                    return

    def remove(self, key: Key) -> None:
        """Forgets `key`: frees its slot; its stored state is deleted at the next flush. No error if unknown."""
        key = check_key(key)
        with self._lock:
            self._check_open()
            entry = self._resident.pop(key, None)
            self._spilled[key] = None
        if entry is not None:
            with entry.lock:
                mine, entry.live = entry.live, False
            if mine:
                with self._lock:
                    self._free_slot(entry.slot)

    @property
    def resident(self) -> int:
        """Keys in memory now."""
        return len(self._resident)

    @property
    def closed(self) -> bool:
        """Whether `close()` was called."""
        return self._closed

    # ---- residency ------------------------------------------------------------------------
    def _acquire(self, key: Key) -> _Entry:
        """`key`'s resident, loaded entry with its lock held (admitting the key if needed)."""
        if type(key) not in _KEY_TYPES:
            key = check_key(key)
        while True:
            with self._lock:
                entry = self._resident.get(key)
                if entry is not None:
                    self._resident.move_to_end(key)
            if entry is None:
                entry = self._admit(key)
                if entry is not None:
                    return entry
                continue  # another thread admitted it first, or every slot was busy
            entry.lock.acquire()
            if entry.live:
                return entry
            entry.lock.release()  # evicted or removed meanwhile: look again

    def _acquire_all(self, keys: list[Key]) -> list[_Entry]:
        """Entries of distinct `keys`, all locked (in one global order, so callers never deadlock)."""
        while True:
            entries = []
            for key in keys:
                entry = self._acquire(key)
                entry.lock.release()
                entries.append(entry)
            ordered = sorted(entries, key=id)
            for entry in ordered:
                entry.lock.acquire()
            if all(entry.live for entry in entries):
                return entries
            for entry in ordered:
                entry.lock.release()

    def _admit(self, key: Key) -> _Entry | None:
        """Makes `key` resident: a slot (evicting if needed), then its state from memory or the store.

        Returns the entry with its lock held, or None when the caller must look
        again (the key became resident meanwhile, or every slot is being stepped).
        """
        key = check_key(key)
        with self._lock:
            self._check_open()
            if key in self._resident:
                return None
            slot = self._take_slot()
            if slot is _ABSENT:
                busy = True
            else:
                busy = False
                pending = self._spilled.pop(key, _ABSENT)
                if pending is _ABSENT:
                    pending = self._writing.get(key, _ABSENT)
                entry = _Entry(slot)
                entry.lock.acquire()
                self._resident[key] = entry
        if busy:
            time.sleep(0.0002)  # all max_resident keys are stepping right now; one finishes soon
            return None
        try:
            if slot is None:
                slot = entry.slot = self.model.stream(_Slot())
                entry.step = slot.step
            state = self._stored_state(key) if pending is _ABSENT else pending
            if state is None:
                slot.reset()
            else:
                slot.state = self._layout.unpack(state)
            entry.dirty = pending is not _ABSENT  # an unwritten state: the store does not have it yet
        except BaseException:
            entry.live = False
            entry.lock.release()  # before taking the pool lock (lock order)
            with self._lock:
                if self._resident.get(key) is entry:
                    del self._resident[key]
                if pending is not _ABSENT and key not in self._resident:
                    self._spilled.setdefault(key, pending)
                if entry.slot is None:
                    self._slots -= 1
                else:
                    self._free_slot(entry.slot)
            raise
        return entry

    def _reset_if_poisoned(self, key: Key, entry: _Entry) -> bool:
        """Resets `entry` if its state is non-finite (entry lock held); returns whether it did."""
        if all(np.isfinite(value).all() for value in entry.slot.state.values()):
            return False
        log.warning("StreamPool: key %r got a non-finite state; it was reset to the zero state.", key)
        entry.slot.reset()
        return True

    def _packed(self, key: Key, entry: _Entry) -> bytes | None:
        """`entry`'s packed state (entry lock held); None (the zero state) for a non-finite one, which is reset.

        The backstop for states poisoned behind a postprocess that hid the NaN
        from `_finite`: one key's NaN must never stop the others' writes.
        """
        try:
            return self._layout.pack(entry.slot.state)
        except StateError:  # only non-finite values fail here: names, shapes and dtypes are the slot's own
            log.warning("StreamPool: key %r had a non-finite state; it was reset to the zero state.", key)
            entry.slot.reset()
            return None

    def _stored_state(self, key: Key) -> bytes | None:
        """`key`'s packed state in the store (None: none), checked to be this model's."""
        stored: StoredState | None = self._store.read(key)
        if stored is None:
            return None
        if stored.fingerprint != self._fingerprint:
            raise StateError(
                f"Key {key!r} holds the state of another model (weights fingerprint {stored.fingerprint[:12]}..., this "
                f"model {self._fingerprint[:12]}...): reset or remove the key to start it again with this model."
            )
        return stored.state

    def _take_slot(self) -> Stream | None | object:
        """A free slot, None (create one), or _ABSENT (every resident key is busy); pool lock held.

        Evicts the least recently used key that nobody is stepping when the pool is full.
        """
        if self._free:
            return self._free.pop()
        if self._slots < self.max_resident:
            self._slots += 1
            return None
        for key, victim in self._resident.items():  # least recently used first
            if self._evict(key, victim):
                return victim.slot
        return _ABSENT

    def _evict(self, key: Key, entry: _Entry) -> bool:
        """Spills `entry` and takes `key` out of the resident keys, unless a step holds it; whether it did (pool lock held)."""
        if not entry.lock.acquire(blocking=False):
            return False
        try:
            if not entry.live:
                return False
            self._spill(key, entry)
        finally:
            entry.lock.release()
        del self._resident[key]
        return True

    def _spill(self, key: Key, entry: _Entry) -> None:
        """Takes `entry` out of service, keeping its state if the store lacks it (pool and entry locks held)."""
        if entry.dirty:
            self._spilled[key] = self._packed(key, entry)
        entry.live = False

    def _free_slot(self, slot: Stream) -> None:
        """Keeps a slot for the next key, or closes it once the pool is closed (pool lock held)."""
        if self._closed:
            self._close_slot(slot)
        else:
            self._free.append(slot)

    def _close_slot(self, slot: Stream) -> None:
        self.model.remove_stream(slot.key)
        self._slots -= 1

    def sweep(self) -> int:
        """Spills keys idle for longer than `idle_ttl` and frees their slots; returns how many left.

        The background thread calls it; call it yourself to sweep at once.
        """
        if self.idle_ttl is None:
            return 0
        cutoff = _monotonic() - self.idle_ttl
        with self._lock:
            idle = []
            for key, entry in self._resident.items():  # least recently used first
                if entry.used > cutoff:
                    break
                idle.append((key, entry))
            swept = 0
            for key, entry in idle:
                if self._evict(key, entry):
                    self._close_slot(entry.slot)
                    swept += 1
        if len(self._spilled) >= self._spill_batch:
            self._write_out(resident=False)
        return swept

    # ---- persistence ----------------------------------------------------------------------
    def flush(self) -> None:
        """Writes every state changed since the last flush to the store, in one transaction.

        When it returns, every step that returned before it was called is stored.

        Raises:
            StateError: the store refused the batch; nothing is lost from memory
                (the next flush tries again).
        """
        self._write_out(resident=True)

    def _write_out(self, *, resident: bool, closing: bool = False) -> None:
        """Writes the spilled states, and with `resident` every dirty resident one, as one batch.

        With `closing`, also takes every resident key out of service (their slots go to `_free`).
        """
        with self._write_lock:
            with self._lock:
                if not resident and len(self._spilled) < self._spill_batch:
                    return  # another thread wrote them meanwhile
                if not closing:
                    self._check_open()
                batch, self._spilled = self._spilled, {}
                entries = list(self._resident.items()) if resident else []
                if closing:
                    self._closed = True
                    self._resident.clear()
                for key, entry in entries:
                    if not (entry.dirty or closing):
                        continue
                    with entry.lock:  # waits for a step in progress; its holder never waits for the pool lock
                        if entry.live and entry.dirty:
                            batch[key] = self._packed(key, entry)
                            entry.dirty = False
                        if closing and entry.live:
                            entry.live = False
                            self._free.append(entry.slot)
                if not batch:
                    return
                self._writing = batch
            try:
                self._store.write(self._fingerprint, batch, durable=resident)  # spills: a process crash is enough
            except BaseException:
                with self._lock:
                    for key, state in batch.items():
                        entry = self._resident.get(key)
                        if entry is not None:
                            entry.dirty = True
                        else:
                            self._spilled.setdefault(key, state)
                    self._writing = {}
                raise
            with self._lock:
                self._writing = {}

    def _check_open(self) -> None:
        if self._closed:
            raise StateError("The StreamPool is closed.")

    def close(self) -> None:
        """Stops the background thread, writes every unstored state, frees the slots, closes a store it opened.

        Steps after `close` raise StateError. Calling it again retries a write
        that failed and is otherwise a no-op.
        """
        if self._maintenance is not None:
            self._stop.set()
            self._maintenance.join()
        with self._lock:
            if self._closed and not self._spilled:
                return
        self._write_out(resident=True, closing=True)
        with self._lock:
            for slot in self._free:
                self._close_slot(slot)
            self._free = []
        if self._owns_store:
            self._store.close()

    def __enter__(self) -> StreamPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _maintain(self, idle_ttl: float | None, flush_interval: float | None) -> None:
        """Background thread: sweeps idle keys and flushes on schedule until `close`."""
        period = min(value for value in (idle_ttl and idle_ttl / 4, flush_interval) if value)
        last_flush = _monotonic()
        while not self._stop.wait(period):
            try:
                self.sweep()
                if flush_interval is not None and _monotonic() - last_flush >= flush_interval:
                    self.flush()
                    last_flush = _monotonic()
            except StateError as err:  # the store failed: nothing is lost from memory; try again next time
                log.error("StreamPool background sweep/flush failed: %s", err)
