"""save_state / load_state: durable, tied to the model, continued in a new process."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tflstm.runtime import InputError, StateError, StreamingModel
from tflstm.runtime.state_file import MAGIC, decode_state, encode_state, write_state


def test_state_continues_identically_in_a_new_process(fixtures, reference, backend, tmp_path):
    path = fixtures / "step_int8.tflite"
    x = reference["x"][0]
    model = StreamingModel(path, backend=backend)
    stream = model.stream("s")
    for row in x[:6]:
        model.step(row)
        stream.step(row[::-1].copy())
    model.save_state(tmp_path / "own.state")
    stream.save_state(tmp_path / "stream.state")
    expected_own = np.stack([model.step(row) for row in x[6:]])
    expected_stream = np.stack([stream.step(row[::-1].copy()) for row in x[6:]])
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(f"""
        import numpy as np
        from tflstm.runtime import StreamingModel
        x = np.load({str(tmp_path / 'x.npy')!r})
        model = StreamingModel({str(path)!r}, backend={backend!r})
        model.load_state({str(tmp_path / 'own.state')!r})
        stream = model.stream("restored")
        stream.load_state({str(tmp_path / 'stream.state')!r})
        np.save({str(tmp_path / 'own.npy')!r}, np.stack([model.step(r) for r in x[6:]]))
        np.save({str(tmp_path / 'stream.npy')!r}, np.stack([stream.step(r[::-1].copy()) for r in x[6:]]))
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "own.npy"), expected_own)
    np.testing.assert_array_equal(np.load(tmp_path / "stream.npy"), expected_stream)


def test_state_of_another_model_is_refused(fixtures, backend, tmp_path):
    StreamingModel(fixtures / "step_int8.tflite", backend=backend).save_state(tmp_path / "int8.state")
    model = StreamingModel(fixtures / "step_float32.tflite", backend=backend)
    with pytest.raises(StateError, match="holds the state of another model"):
        model.load_state(tmp_path / "int8.state")


def _swap_names(blob: bytes) -> bytes:
    """Swaps the first two state names in the header (same lengths): h would load into c."""
    first, second = blob.index(b"lstm_0/h"), blob.index(b"lstm_0/c")
    swapped = bytearray(blob)
    swapped[first : first + 8], swapped[second : second + 8] = b"lstm_0/c", b"lstm_0/h"
    return bytes(swapped)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda blob: blob[:-3], "checksum does not match"),
        (lambda blob: blob[:-1] + bytes([blob[-1] ^ 1]), "checksum does not match"),
        (lambda blob: blob[:40] + bytes([blob[40] ^ 1]) + blob[41:], "checksum does not match"),
        (_swap_names, "checksum does not match"),
        (lambda blob: blob[:8] + (10**6).to_bytes(4, "little") + blob[12:], "checksum does not match"),
        (lambda blob: b"", "not a tflstm state file"),
        (lambda blob: b"NOTSTATE" + blob[8:], "not a tflstm state file"),
        (lambda blob: b"TFLSTMS1" + blob[8:], "state file format '1'; this tflstm reads format 2"),
        (lambda blob: b"TFLSTMS3" + blob[8:], "state file format '3'; this tflstm reads format 2"),
    ],
    ids=["truncated", "digest-bit", "header-bit", "swapped-names", "header-size", "empty", "magic",
         "older", "newer"],
)
def test_damaged_state_file_is_refused_and_state_kept(fixtures, reference, backend, tmp_path, damage, message):
    model = StreamingModel(fixtures / "step_float32.tflite", backend=backend)
    model.step(reference["x"][0, 0])
    model.save_state(tmp_path / "s.state")
    blob = (tmp_path / "s.state").read_bytes()
    assert blob.startswith(MAGIC)
    (tmp_path / "s.state").write_bytes(damage(blob))
    model.reset()
    model.step(reference["x"][0, 1])
    before = model.state
    with pytest.raises(StateError, match=message):
        model.load_state(tmp_path / "s.state")
    for name, value in model.state.items():
        np.testing.assert_array_equal(value, before[name])


def test_missing_or_unreadable_file_is_a_state_error(fixtures, backend, tmp_path):
    model = StreamingModel(fixtures / "step_float32.tflite", backend=backend)
    with pytest.raises(StateError, match="Cannot read the state file .*missing.state") as missing:
        model.load_state(tmp_path / "missing.state")
    assert isinstance(missing.value.__cause__, FileNotFoundError)
    with pytest.raises(StateError, match="Cannot read the state file") as directory:
        model.load_state(tmp_path)
    assert isinstance(directory.value.__cause__, IsADirectoryError)
    with pytest.raises(StateError, match="Cannot write the state file") as unwritable:
        model.save_state(tmp_path / "no" / "such" / "folder" / "s.state")
    assert isinstance(unwritable.value.__cause__, FileNotFoundError)


def test_a_state_of_the_wrong_layout_is_refused(fixtures, backend, tmp_path):
    """A file whose checksum is right but whose states do not fit the model."""
    model = StreamingModel(fixtures / "step_float32.tflite", backend=backend)
    state = model.state
    state["lstm_0/h"] = np.zeros((1, 5), np.float32)
    write_state(tmp_path / "s.state", state, model.metadata.fingerprint)
    with pytest.raises(StateError, match=r"'lstm_0/h' must be float32 \[1, 16\], got float32 \[1, 5\]"):
        model.load_state(tmp_path / "s.state")


def test_encoding_round_trips_every_state_dtype():
    state = {
        "a/h": np.arange(6, dtype=np.int8).reshape(1, 6) - 3,
        "a/c": np.arange(6, dtype=np.int16).reshape(1, 6) * 1000,
        "b/h": np.linspace(-1, 1, 4, dtype=np.float32).reshape(1, 4),
    }
    decoded = decode_state(encode_state(state, "f" * 64), "f" * 64)
    assert list(decoded) == list(state)
    for name, value in state.items():
        assert decoded[name].dtype == value.dtype
        np.testing.assert_array_equal(decoded[name], value)
    with pytest.raises(StateError, match="has dtype float64"):
        encode_state({"x": np.zeros(2)}, "f")


def test_saving_replaces_atomically_and_leaves_no_temporary(fixtures, backend, tmp_path):
    model = StreamingModel(fixtures / "step_float32.tflite", backend=backend)
    target = tmp_path / "s.state"
    model.save_state(target)
    first = target.read_bytes()
    model.step(np.ones(3, np.float32))
    model.save_state(target)
    assert target.read_bytes() != first
    assert [p.name for p in tmp_path.iterdir()] == ["s.state"]


def test_save_removes_temporaries_of_dead_writers_and_keeps_the_mode(fixtures, backend, tmp_path):
    model = StreamingModel(fixtures / "step_float32.tflite", backend=backend)
    target = tmp_path / "s.state"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".s.state.{int(dead.stdout)}-0badc0de.tmp"
    stale.write_bytes(b"left by a killed save")
    mine = tmp_path / f".s.state.{os.getpid()}-00000000.tmp"  # a live writer's: kept
    mine.write_bytes(b"in flight")
    model.save_state(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["s.state", mine.name])
    target.chmod(0o640)
    model.save_state(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_packed_state_round_trips_and_checks_its_size(fixtures, reference, backend):
    from tflstm.runtime.state import pack_state, state_nbytes, unpack_state

    model = StreamingModel(fixtures / "step_int8.tflite", backend=backend)
    for row in reference["x"][0, :4]:
        model.step(row)
    specs = model.metadata.states
    blob = pack_state(specs, model.state)
    assert len(blob) == state_nbytes(specs) == (16 + 8) * 1 + (16 + 8) * 2  # h int8, c int16
    for name, value in unpack_state(specs, blob).items():
        np.testing.assert_array_equal(value, model.state[name])
    with pytest.raises(StateError, match=f"holds {len(blob)} bytes, got {len(blob) - 1}"):
        unpack_state(specs, blob[:-1])


@pytest.mark.parametrize("model_name", ["step_float32.tflite", "step_int8.tflite", "step_normalized_float32.tflite",
                                        "step_b4_float32.tflite"])
def test_run_step_packed_equals_run_step_and_leaves_streams_alone(fixtures, reference, backend, model_name):
    from tflstm.runtime.state import pack_state

    model = StreamingModel(fixtures / model_name, backend=backend, streams="swap")
    specs, batch = model.metadata.states, model.batch_size
    x = reference["x"][0] if batch == 1 else np.stack([reference["x"][s % 3] for s in range(batch)], axis=1)
    model.step(x[0])
    own_before, stream_before = model.state, model.stream("a").state
    fast = portable = None  # the zero state
    state = model.zero_state()
    for row in x:
        y, state = model.run_step(row, state)
        y_fast, fast = model.run_step_packed(row, fast)
        y_portable, portable = StreamingModel.run_step_packed(model, row, portable)  # the big-endian hosts' path
        np.testing.assert_array_equal(y_fast, y)
        np.testing.assert_array_equal(y_portable, y)
        assert fast == portable == pack_state(specs, state, batch)
    for name, value in model.state.items():
        np.testing.assert_array_equal(value, own_before[name])
    for name, value in model.stream("a").state.items():
        np.testing.assert_array_equal(value, stream_before[name])


def test_run_step_packed_refuses_bad_states_and_inputs(fixtures, reference, backend):
    model = StreamingModel(fixtures / "step_float32.tflite", backend=backend)
    x = reference["x"][0]
    _, packed = model.run_step_packed(x[0], None)
    nbytes = model.state_layout.nbytes
    for step in (model.run_step_packed, lambda row, blob: StreamingModel.run_step_packed(model, row, blob)):
        with pytest.raises(StateError, match=f"holds {nbytes} bytes, got {nbytes - 4}"):
            step(x[1], packed[:-4])
        with pytest.raises(StateError, match="must be bytes, got ndarray"):
            step(x[1], np.frombuffer(packed, np.uint8))
        for position, bad in ((0, np.nan), (nbytes // 4 - 1, np.inf)):
            values = np.frombuffer(packed, "<f4").copy()
            values[position] = bad
            name = model.state_names[0 if position == 0 else -1]
            with pytest.raises(StateError, match=f"State '{name}' holds non-finite values"):
                step(x[1], values.tobytes())
        with pytest.raises(InputError):
            step(np.array([np.nan, 0, 0], np.float32), packed)
    y, _ = model.run_step_packed(x[1], bytearray(packed))  # any bytes-like object
    np.testing.assert_array_equal(y, StreamingModel.run_step_packed(model, x[1], packed)[0])
