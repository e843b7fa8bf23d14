"""Runtime errors name what was expected; the runtime never imports TensorFlow."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tflstm.runtime import InputError, ModelError, StateError, StreamingModel, TFLSTMError


def test_errors_name_what_was_expected(fixtures, backend):
    model = StreamingModel(fixtures / "step_float32.tflite", backend=backend)
    with pytest.raises(InputError, match=r"shape \[3\] or \[1, 3\] or \[1, 1, 3\], got \[4\]"):
        model.step(np.zeros(4, np.float32))
    with pytest.raises(InputError, match="floats, got int64"):
        model.step(np.zeros(3, np.int64))
    with pytest.raises(StateError, match=r"Expected state names \['lstm_0/c', 'lstm_0/h', 'lstm_1/c', 'lstm_1/h'\]"):
        model.state = {"lstm_0/c": np.zeros((1, 16), np.float32)}
    bad = model.zero_state()
    bad["lstm_1/h"] = np.zeros((1, 9), np.float32)
    with pytest.raises(StateError, match=r"'lstm_1/h' must be float32 \[1, 8\], got float32 \[1, 9\]"):
        model.run_step(np.zeros(3, np.float32), bad)
    with pytest.raises(ModelError, match="Expected a .tflite flatbuffer"):
        StreamingModel(b"garbage bytes that are not a model", backend=backend)
    with pytest.raises(ValueError, match="`streams` must be one of"):
        StreamingModel(fixtures / "step_float32.tflite", streams="threads")
    with pytest.raises(ValueError, match="`backend` must be 'auto' or one of"):
        StreamingModel(fixtures / "step_float32.tflite", backend="onnx")
    assert all(issubclass(e, TFLSTMError) and issubclass(e, ValueError) for e in (InputError, ModelError, StateError))


def test_batched_row_streams_take_one_row(fixtures, backend):
    batched = StreamingModel(fixtures / "step_b4_float32.tflite", backend=backend)
    with pytest.raises(InputError, match=r"row stream must be one time step of shape \[3\], got \[4, 3\]"):
        batched.step_many({"a": np.zeros((4, 3), np.float32)})
    with pytest.raises(ValueError, match='streams="interpreter"` needs a batch-1 model'):
        StreamingModel(fixtures / "step_b4_float32.tflite", backend=backend, streams="interpreter")


def test_missing_backend_names_the_pip_command(monkeypatch):
    from tflstm.runtime import backend

    monkeypatch.setitem(backend._MODULES, "litert", ("no_such_module_here", "pip install ai-edge-litert"))
    with pytest.raises(ImportError, match=r"litert \(pip install ai-edge-litert\)"):
        backend.interpreter_module("litert")


def test_streaming_never_imports_tensorflow(fixtures, backend, tmp_path):
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import tflstm, tflstm.runtime
        from tflstm.runtime import StreamingModel
        model = StreamingModel({str(fixtures / 'step_b4_int8.tflite')!r}, backend={backend!r})
        model.step(np.zeros((4, 3), np.float32))
        model.step_many({{k: np.ones(3, np.float32) for k in range(6)}})
        model.save_state({str(tmp_path / 's.state')!r})
        model.load_state({str(tmp_path / 's.state')!r})
        StreamingModel({str(fixtures / 'keras_stock_step.tflite')!r}, backend={backend!r}).step(np.zeros(3, np.float32))
        loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'tensorflow')
        assert not loaded, loaded
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
