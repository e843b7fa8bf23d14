"""StreamPool: every key's outputs equal a serial replay, under threads, eviction churn, TTL, flushes and restarts."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Mapping

import numpy as np
import pytest

import tflstm.runtime.model as model_module
from tflstm.runtime import InputError, StateError, StreamingModel
from tflstm.runtime.pool import NonFiniteStateError, StreamPool
from tflstm.runtime.state import state_nbytes
from tflstm.runtime.store import MemoryStore, SQLiteStore, StoreError

DEPTH = 3


def serial(path, backend, inputs: dict) -> dict:
    """Each key's outputs stepped alone, one after the other: key -> [steps, outputs]."""
    model = StreamingModel(path, backend=backend, streams="swap")
    return {key: np.stack([model.stream(key).step(x) for x in xs]) for key, xs in inputs.items()}


def key_inputs(keys, steps: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {key: rng.normal(size=(steps, DEPTH)).astype(np.float32) for key in keys}


def assert_equal_outputs(got: dict, expected: dict) -> None:
    assert sorted(got, key=repr) == sorted(expected, key=repr)
    for key in expected:
        np.testing.assert_array_equal(np.stack(got[key]), expected[key], err_msg=f"key {key!r}")


MODELS = [("step_float32.tflite", "auto"), ("step_int8.tflite", "swap"), ("step_b4_float32.tflite", "auto")]


@pytest.mark.parametrize("model_name, streams", MODELS)
def test_threads_churn_and_flushes_equal_the_serial_replay(fixtures, backend, tmp_path, model_name, streams):
    """8 threads step 96 keys (12 each, interleaved, some through step_many) through a pool of 16
    slots, while the main thread flushes; 4 keys are stepped by every thread at once. Then the
    pool is closed and a new one on the same store finishes every key."""
    path = fixtures / model_name
    threads, per_thread, steps = 8, 12, 40
    own = {k: [f"t{k}-{j}" if j % 3 else k * 1000 + j for j in range(per_thread)] for k in range(threads)}
    inputs = key_inputs([key for keys in own.values() for key in keys], 2 * steps, seed=1)
    shared = {b"shared-%d" % s: np.full(DEPTH, 0.1 * (s + 1), np.float32) for s in range(4)}
    model = StreamingModel(path, backend=backend, streams=streams)
    got = {key: [] for key in inputs}
    shared_got: list[tuple[bytes, bytes]] = []
    errors: list[BaseException] = []
    over_budget = []
    start = threading.Barrier(threads + 1)
    done = threading.Event()

    def worker(k: int, pool: StreamPool, first: int) -> None:
        try:
            rng = np.random.default_rng(k)
            start.wait()
            for t in range(first, first + steps):
                keys = [own[k][i] for i in rng.permutation(len(own[k]))]
                if k % 4 == 0:  # one call for half of this thread's keys
                    half = keys[: len(keys) // 2]
                    for key, y in pool.step_many({key: inputs[key][t] for key in half}).items():
                        got[key].append(y)
                    keys = keys[len(keys) // 2 :]
                for key in keys:
                    got[key].append(pool.step(key, inputs[key][t]))
                    over_budget.append(pool.resident > pool.max_resident)
                key = list(shared)[t % len(shared)]
                shared_got.append((key, pool.step(key, shared[key]).tobytes()))
        except BaseException as err:  # reported below
            errors.append(err)

    store = tmp_path / "states.db"
    for first in (0, steps):
        pool = StreamPool(model, store=store, max_resident=16, spill_batch=4)
        workers = [threading.Thread(target=worker, args=(k, pool, first)) for k in range(threads)]
        for thread in workers:
            thread.start()
        start.wait()
        while any(thread.is_alive() for thread in workers):
            pool.flush()
            time.sleep(0.001)
        for thread in workers:
            thread.join()
        pool.close()
        assert not errors, errors
    assert not any(over_budget)
    assert_equal_outputs(got, serial(path, backend, inputs))
    # Shared keys: 2 * steps steps in all, each input constant, so the n-th step's output is fixed
    # whatever thread made it: the outputs must be exactly the serial ones (as a multiset).
    count = {key: sum(1 for k, _ in shared_got if k == key) for key in shared}
    expected = serial(path, backend, {key: np.tile(x, (count[key], 1)) for key, x in shared.items()})
    for key in shared:
        assert sorted(y for k, y in shared_got if k == key) == sorted(row.tobytes() for row in expected[key])
    assert len(model) == 0  # close() gave every slot back


def test_mixed_lanes_within_the_interpreter_budget(fixtures, backend, monkeypatch):
    """streams="auto" gives interpreters while their estimate fits the budget, swap lanes beyond."""
    path = fixtures / "step_float32.tflite"
    size = path.stat().st_size
    each = model_module.INTERPRETER_BYTES
    monkeypatch.setattr(model_module, "INTERPRETER_BUDGET_BYTES", 3 * (each + size) + each)  # 3 mapped, 4 from bytes
    model = StreamingModel(path, backend=backend)
    inputs = key_inputs(range(10), 30, seed=2)
    streams = {key: model.stream(key) for key in inputs}
    assert model.interpreter_streams == 3
    got = {key: [] for key in inputs}
    for t in range(30):
        for key in inputs:
            got[key].append(streams[key].step(inputs[key][t]))
    assert_equal_outputs(got, serial(path, backend, inputs))
    model.remove_stream(0)
    assert model.interpreter_streams == 2
    model.stream("again")
    assert model.interpreter_streams == 3
    bytes_model = StreamingModel(path.read_bytes(), backend=backend)  # no file mapping to count: more fit
    for key in range(10):
        bytes_model.stream(key)
    assert bytes_model.interpreter_streams == 4


def test_idle_keys_leave_memory_and_come_back_exactly(fixtures, backend):
    path = fixtures / "step_float32.tflite"
    model = StreamingModel(path, backend=backend)
    inputs = key_inputs(["a", "b", "c"], 20, seed=3)
    got = {key: [] for key in inputs}
    with StreamPool(model, idle_ttl=0.05) as pool:
        for t in range(10):
            for key in inputs:
                got[key].append(pool.step(key, inputs[key][t]))
        assert pool.resident == 3 and len(model) == 3
        deadline = time.monotonic() + 5
        while pool.resident and time.monotonic() < deadline:
            got["a"].append(pool.step("a", inputs["a"][len(got["a"])])) if len(got["a"]) < 12 else None
            time.sleep(0.02)
        assert pool.resident == 0 and len(model) == 0  # the slots were freed, not just emptied
        for t in range(10, 20):
            for key in inputs:
                if len(got[key]) < 20:
                    got[key].append(pool.step(key, inputs[key][len(got[key])]))
    assert_equal_outputs(got, serial(path, backend, inputs))


def test_sweep_keeps_recently_used_keys(fixtures, backend):
    model = StreamingModel(fixtures / "step_float32.tflite", backend=backend)
    pool = StreamPool(model, idle_ttl=3600)
    for key in range(5):
        pool.step(key, np.zeros(DEPTH, np.float32))
    assert pool.sweep() == 0 and pool.resident == 5
    pool.idle_ttl = 1e-9
    assert pool.sweep() == 5 and pool.resident == 0
    pool.close()


@pytest.mark.parametrize("store_kind", ["sqlite", "memory"])
def test_restart_resumes_every_key_and_keeps_removals(fixtures, backend, tmp_path, store_kind):
    path = fixtures / "step_float32.tflite"
    keys = ["x", 7, b"\x00raw", -(2**63), "ключ"]
    inputs = key_inputs(keys, 30, seed=4)
    memory = MemoryStore()
    store = (lambda: tmp_path / "s.db") if store_kind == "sqlite" else (lambda: memory)
    got = {key: [] for key in keys}
    for begin, end in ((0, 10), (10, 20), (20, 30)):
        with StreamPool(StreamingModel(path, backend=backend), store=store(), max_resident=2) as pool:
            if begin == 10:
                pool.remove("x")  # forgotten: starts again from zero
                pool.reset(7)  # zero state, stored as such
            for t in range(begin, end):
                for key in keys:
                    got[key].append(pool.step(key, inputs[key][t]))
    expected = serial(path, backend, inputs)
    restarted = serial(path, backend, {key: inputs[key][10:] for key in ("x", 7)})
    for key in ("x", 7):
        expected[key] = np.concatenate([expected[key][:10], restarted[key]])
    assert_equal_outputs(got, expected)


def test_close_leaves_one_plain_sqlite_file(fixtures, backend, tmp_path):
    """close() checkpoints the WAL into the file: one file, readable by any SQLite, a row per key."""
    model = StreamingModel(fixtures / "step_float32.tflite", backend=backend)
    pool = StreamPool(model, store=tmp_path / "s.db", max_resident=1000)
    for key in range(20):
        pool.step(key, np.ones(DEPTH, np.float32))
    pool.close()
    assert [p.name for p in tmp_path.iterdir()] == ["s.db"]
    with contextlib.closing(sqlite3.connect(tmp_path / "s.db")) as db:
        size = state_nbytes(model.metadata.states)  # (16 + 16 + 8 + 8) float32
        assert db.execute("SELECT count(*), min(length(state)), max(length(state)) FROM states").fetchone() == (20, size, size)


def test_key_kinds(fixtures, backend):
    model = StreamingModel(fixtures / "step_float32.tflite", backend=backend)
    x = np.ones(DEPTH, np.float32)
    with StreamPool(model) as pool:
        first = pool.step(1, x)
        np.testing.assert_array_equal(pool.step("1", x), first)  # "1" is another key: its first step
        np.testing.assert_array_equal(pool.step(b"1", x), first)
        second = pool.step(np.int64(1), x)  # the same key as 1: its second step
        assert not np.array_equal(second, first)
        assert pool.resident == 3
        for bad in (1.0, True, None, (1, 2), [1], bytearray(b"1")):
            with pytest.raises(TypeError, match="must be a str, an int or bytes"):
                pool.step(bad, x)
        for bad, message in ((2**63, "signed 64 bits"), ("k" * 1025, "at most 1024 bytes"),
                             (b"k" * 1025, "at most 1024 bytes"), ("\ud800", "valid Unicode")):
            with pytest.raises(ValueError, match=message):
                pool.step(bad, x)
        assert pool.resident == 3


class Pairs(Mapping):
    """A mapping that may name equal keys twice (a dict cannot)."""

    def __init__(self, pairs: list) -> None:
        self.pairs = pairs

    def __getitem__(self, key):
        return next(value for k, value in self.pairs if k is key)

    def __iter__(self):
        return (k for k, _ in self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)


def test_refused_inputs_move_nothing(fixtures, backend):
    path = fixtures / "step_float32.tflite"
    inputs = key_inputs(["a", "b"], 3, seed=5)
    got = {"a": [], "b": []}
    with StreamPool(StreamingModel(path, backend=backend), max_resident=4) as pool:
        got["a"].append(pool.step("a", inputs["a"][0]))
        nan = inputs["b"][0].copy()
        nan[1] = np.nan
        with pytest.raises(InputError, match="non-finite"):
            pool.step("a", nan)
        with pytest.raises(InputError):
            pool.step_many({"a": inputs["a"][1], "b": nan})
        with pytest.raises(InputError):
            pool.step_many({"a": inputs["a"][1], "b": np.zeros(5, np.float32)})
        with pytest.raises(ValueError, match="at most max_resident=4"):
            pool.step_many({k: inputs["a"][1] for k in range(5)})
        with pytest.raises(ValueError, match="names a key twice"):
            pool.step_many(Pairs([(1, inputs["a"][1]), (np.int64(1), inputs["a"][1])]))
        for t in (1, 2):
            out = pool.step_many({"a": inputs["a"][t], "b": inputs["b"][t - 1]})
            got["a"].append(out["a"])
            got["b"].append(out["b"])
        got["b"].append(pool.step("b", inputs["b"][2]))
    assert_equal_outputs(got, serial(path, backend, inputs))


def test_pre_and_postprocess_receive_the_key(fixtures, backend):
    path = fixtures / "step_float32.tflite"
    seen = []

    def pre(key, x):
        seen.append(("pre", key))
        return np.asarray(x, np.float32) * (2 if key == "double" else 1)

    def post(key, y):
        seen.append(("post", key))
        return {"key": key, "y": y}

    x = np.full(DEPTH, 0.25, np.float32)
    with StreamPool(StreamingModel(path, backend=backend), preprocess=pre, postprocess=post) as pool:
        out = pool.step("double", x)
        many = pool.step_many({"plain": x})
    assert out["key"] == "double" and many["plain"]["key"] == "plain"
    expected = serial(path, backend, {"double": (2 * x)[None], "plain": x[None]})
    np.testing.assert_array_equal(out["y"], expected["double"][0])
    np.testing.assert_array_equal(many["plain"]["y"], expected["plain"][0])
    assert seen == [("pre", "double"), ("post", "double"), ("pre", "plain"), ("post", "plain")]


def test_closed_pool_and_bad_arguments(fixtures, backend):
    model = StreamingModel(fixtures / "step_float32.tflite", backend=backend)
    pool = StreamPool(model)
    pool.step("a", np.zeros(DEPTH, np.float32))
    pool.close()
    pool.close()  # a no-op
    for call in (lambda: pool.step("a", np.zeros(DEPTH, np.float32)), lambda: pool.reset("a"),
                 lambda: pool.remove("a"), pool.flush):
        with pytest.raises(StateError, match="closed"):
            call()
    for kwargs, message in (({"max_resident": 0}, "max_resident"), ({"spill_batch": 1.5}, "spill_batch"),
                            ({"idle_ttl": -1}, "idle_ttl"), ({"flush_interval": float("nan")}, "flush_interval"),
                            ({"preprocess": 3}, "preprocess")):
        with pytest.raises((ValueError, TypeError), match=message):
            StreamPool(model, **kwargs)
    with pytest.raises(TypeError, match="StateStore"):
        StreamPool(model, store=object())
    with pytest.raises(TypeError, match="StreamingModel"):
        StreamPool(str(fixtures / "step_float32.tflite"))
    with pytest.raises(ValueError, match="allow_nonfinite"):
        StreamPool(StreamingModel(fixtures / "step_float32.tflite", backend=backend, allow_nonfinite=True))


class FlakyStore(MemoryStore):
    """A MemoryStore whose writes fail while `failing` is set."""

    failing = False

    def write(self, fingerprint, changes, *, durable=True):
        if self.failing:
            raise StoreError("disk full (simulated)")
        super().write(fingerprint, changes, durable=durable)


def test_a_failed_write_loses_nothing(fixtures, backend):
    path = fixtures / "step_float32.tflite"
    inputs = key_inputs(range(12), 8, seed=6)
    store = FlakyStore()
    got = {key: [] for key in inputs}
    pool = StreamPool(StreamingModel(path, backend=backend), store=store, max_resident=3, spill_batch=2)
    for t in range(4):
        for key in inputs:
            got[key].append(pool.step(key, inputs[key][t]))
    store.failing = True
    with pytest.raises(StateError, match="disk full"):
        for t in range(4, 8):
            for key in inputs:
                got[key].append(pool.step(key, inputs[key][t]))
    with pytest.raises(StateError, match="disk full"):
        pool.flush()
    with pytest.raises(StateError, match="disk full"):
        pool.close()
    store.failing = False
    pool.close()  # the retry writes what the failed ones could not
    pool = StreamPool(StreamingModel(path, backend=backend), store=store, max_resident=3)
    for key in inputs:
        while len(got[key]) < 8:
            got[key].append(pool.step(key, inputs[key][len(got[key])]))
    pool.close()
    assert_equal_outputs(got, serial(path, backend, inputs))


def test_store_refuses_another_models_state_and_damaged_rows(fixtures, backend, tmp_path):
    path = tmp_path / "s.db"
    float_model = StreamingModel(fixtures / "step_float32.tflite", backend=backend)
    x = np.ones(DEPTH, np.float32)
    with StreamPool(float_model, store=path) as pool:
        for key in ("a", "b", "c", "d", "e"):
            pool.step(key, x)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE states SET state = CAST(substr(state, 1, 10) || x'00' || substr(state, 12) AS BLOB) "
                   "WHERE key = 'b'")  # one byte changed
        db.execute("UPDATE states SET key = 'moved' WHERE key = 'c'")  # another key's state
        db.execute("UPDATE states SET model = 99 WHERE key = 'd'")  # a model that does not exist
        db.execute("UPDATE states SET state = substr(state, 2) WHERE key = 'e'")  # shorter, and text
    with StreamPool(StreamingModel(fixtures / "step_float32.tflite", backend=backend), store=path) as pool:
        second = pool.step("a", x)  # intact rows still resume
        for key in ("b", "moved", "d", "e"):
            with pytest.raises(StateError, match=f"key '{key}' .* damaged"):
                pool.step(key, x)
        assert pool.resident == 1
        pool.reset("b")  # a damaged key can be started again
        np.testing.assert_array_equal(pool.step("b", x), serial(fixtures / "step_float32.tflite", backend, {"b": x[None]})["b"][0])
    assert not np.array_equal(second, float_model.run_step(x, float_model.zero_state())[0])
    with StreamPool(StreamingModel(fixtures / "step_int8.tflite", backend=backend), store=path) as pool:
        with pytest.raises(StateError, match="another model"):
            pool.step("a", x)
        pool.step("new", x)  # keys without a stored state are fine


def test_store_file_errors(tmp_path):
    not_sqlite = tmp_path / "junk.db"
    not_sqlite.write_bytes(b"not a database" * 500)
    with pytest.raises(StateError, match="damaged or unreadable"):
        SQLiteStore(not_sqlite)
    other = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(other)) as db, db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(StateError, match="not a tflstm state store"):
        SQLiteStore(other)
    good = tmp_path / "good.db"
    SQLiteStore(good, state_bytes=100).close()
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(StateError):
        store = SQLiteStore(truncated)
        store.write("f" * 64, {"k": b"1" * 100})
    held = SQLiteStore(good)
    with pytest.raises(StateError, match="in use by another process"):
        SQLiteStore(good, timeout=0.05)
    held.close()
    with pytest.raises(StateError, match="closed"):
        held.read("k")
    with pytest.raises(StateError, match="Cannot open"):
        SQLiteStore(tmp_path / "missing-folder" / "s.db")


def test_the_pool_imports_neither_tensorflow_nor_the_server(fixtures, backend, tmp_path):
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        from tflstm.runtime import StreamingModel, StreamPool
        model = StreamingModel({str(fixtures / 'step_float32.tflite')!r}, backend={backend!r})
        with StreamPool(model, store={str(tmp_path / 's.db')!r}, max_resident=2) as pool:
            for key in range(5):
                pool.step(key, np.zeros(3, np.float32))
        loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'starlette', 'uvicorn'))
        assert not loaded, loaded
    """)
    subprocess.run([sys.executable, "-c", script], check=True)


POISON = np.array([3e38, -3e38] * 4, np.float32)
"""Finite, but in the poisonable fixture model (no normalization) its products overflow the first
layer's sums to +inf and -inf, whose sum makes the state NaN (tests/make_fixtures.py checks it)."""


def test_a_state_made_non_finite_resets_only_that_key(fixtures, backend, tmp_path):
    poisonable = fixtures / "step_poisonable_float32.tflite"
    probe = StreamingModel(poisonable, backend=backend)
    probe.step(POISON)
    assert not all(np.isfinite(value).all() for value in probe.state.values())  # the input does poison a state
    rng = np.random.default_rng(8)
    inputs = {key: rng.normal(size=(3, 8)).astype(np.float32) for key in ("a", "b")}  # different per key
    got = {"a": [], "b": []}
    with StreamPool(StreamingModel(poisonable, backend=backend), store=tmp_path / "s.db") as pool:
        pool.step("a", inputs["a"][0])
        got["b"].append(pool.step("b", inputs["b"][0]))
        with pytest.raises(NonFiniteStateError, match=r"\['a'\] made their LSTM state non-finite") as error:
            pool.step("a", POISON)
        assert error.value.keys == ["a"] and error.value.outputs == {}
        with pytest.raises(NonFiniteStateError) as error:
            pool.step_many({"a": POISON, "b": inputs["b"][1]})
        assert error.value.keys == ["a"] and list(error.value.outputs) == ["b"]
        got["b"].append(error.value.outputs["b"])  # b's step stands
        got["b"].append(pool.step("b", inputs["b"][2]))
        for x in inputs["a"]:  # a starts again from the zero state
            got["a"].append(pool.step("a", x))
        pool.flush()
    assert_equal_outputs(got, serial(poisonable, backend, inputs))


def test_a_non_finite_state_behind_a_postprocess_never_blocks_writes(fixtures, backend, tmp_path):
    """A model-level postprocess hides the NaN output: the state is caught when it is stored."""
    x = np.random.default_rng(9).normal(size=8).astype(np.float32)
    model = StreamingModel(fixtures / "step_poisonable_float32.tflite", backend=backend,
                           postprocess=lambda y: float(np.argmax(y)))
    with StreamPool(model, store=tmp_path / "s.db", max_resident=1) as pool:
        pool.step("poisoned", POISON)  # unnoticed here: the result is an argmax
        pool.step("other", x)  # evicts "poisoned": reset, stored as the zero state
        pool.step("poisoned", POISON)
        pool.flush()  # writes "other"; "poisoned" again as the zero state
    with contextlib.closing(SQLiteStore(tmp_path / "s.db")) as store:
        assert store.read("poisoned") is None and store.read("other") is not None
