"""save_state / load_state: durable, tied to the model, continued in a new process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tflstm.runtime import StateError, StreamingModel
from tflstm.runtime.state_file import MAGIC


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


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda blob: blob[:-3], "checksum does not match"),
        (lambda blob: blob[:-1] + bytes([blob[-1] ^ 1]), "checksum does not match"),
        (lambda blob: b"NOTSTATE" + blob[8:], "not a tflstm state file"),
        (lambda blob: blob[:12] + b"{{{" + blob[15:], "unreadable header"),
    ],
)
def test_damaged_state_file_is_refused_and_state_kept(fixtures, reference, backend, tmp_path, damage, message):
    model = StreamingModel(fixtures / "step_float32.tflite", backend=backend)
    model.step(reference["x"][0, 0])
    model.save_state(tmp_path / "s.state")
    before = model.state
    blob = (tmp_path / "s.state").read_bytes()
    assert blob.startswith(MAGIC)
    (tmp_path / "s.state").write_bytes(damage(blob))
    model.reset()
    model.step(reference["x"][0, 0])
    with pytest.raises(StateError, match=message):
        model.load_state(tmp_path / "s.state")
    for name, value in model.state.items():
        np.testing.assert_array_equal(value, before[name])


def test_saving_replaces_atomically_and_leaves_no_temporary(fixtures, backend, tmp_path):
    model = StreamingModel(fixtures / "step_float32.tflite", backend=backend)
    target = tmp_path / "s.state"
    model.save_state(target)
    first = target.read_bytes()
    model.step(np.ones(3, np.float32))
    model.save_state(target)
    assert target.read_bytes() != first
    assert [p.name for p in tmp_path.iterdir()] == ["s.state"]
