"""The digits task end to end: train, convert to every quantization, stream, compare.

Also runs every model in the edge venv (tflite-runtime 2.14, NumPy < 2, no
TensorFlow), in its own process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tflstm import flatbuf, fused_op
from tflstm.convert import export
from tflstm.convert.verify import VariantReport
from tflstm.format import QUANTIZATIONS, TOLERANCES, read_metadata
from tflstm.runtime import StreamingModel
from tflstm.train import builder, digits

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trained(digits_demo):
    out, reports = digits_demo
    checkpoint = out / "checkpoint"
    _, test = digits.load()
    reference = builder.predict(checkpoint, test.x)
    return out, checkpoint, test, reference, {r.name: r for r in reports}


def test_reference_model_learned_the_task(trained):
    _, _, test, reference, _ = trained
    assert np.mean(reference[:, -1].argmax(-1) == test.y) > 0.9


@pytest.mark.parametrize("quantize", QUANTIZATIONS)
@pytest.mark.parametrize("kind", ["sequence", "step"])
def test_each_quantization_runs_close_to_tensorflow(trained, quantize, kind):
    out, _, test, reference, reports = trained
    report: VariantReport = reports[export.model_file_name(kind, quantize, 1)]
    assert report.max_abs_error <= TOLERANCES[quantize]
    float_accuracy = reports[export.model_file_name(kind, "float32", 1)].accuracy
    assert abs(report.accuracy - float_accuracy) <= 0.02
    model = flatbuf.read_model((out / "models" / report.name).read_bytes())
    assert flatbuf.op_names(model).count(fused_op.OP_NAME) == 2


@pytest.mark.parametrize("quantize", ["dynamic", "int8"])
def test_integer_files_are_at_most_a_third_of_float32(trained, quantize):
    out, *_ = trained
    for kind in ("sequence", "step"):
        size = (out / "models" / export.model_file_name(kind, quantize, 1)).stat().st_size
        float_size = (out / "models" / export.model_file_name(kind, "float32", 1)).stat().st_size
        assert size <= float_size / 3


def test_int8_state_is_integer_and_quantized(trained):
    out, *_ = trained
    meta = json.loads((out / "models" / "step_int8.json").read_text())
    kinds = {(s["kind"], s["dtype"]) for s in meta["states"]}
    assert kinds == {("h", "int8"), ("c", "int16")}
    assert all(s["scale"] > 0 for s in meta["states"])


def test_batched_step_model_matches_tensorflow(trained):
    out, _, test, reference, reports = trained
    from tflstm.convert.verify import stream_step_model

    name = export.model_file_name("step", "float32", 64)
    assert reports[name].batch_size == 64
    got = stream_step_model((out / "models" / name).read_bytes(), test.x[:100])
    np.testing.assert_allclose(got, reference[:100], atol=TOLERANCES["float32"], rtol=0)


def test_models_take_raw_pixels_and_say_so(trained):
    """The metadata records pixel / 16, so raw pixels 0..16 give TensorFlow's answers."""
    out, _, test, reference, reports = trained
    assert test.x.max() == 16.0
    for path in (out / "models").glob("*.tflite"):
        assert read_metadata(path.read_bytes()).normalization == {"mean": [0.0] * 8, "std": [16.0] * 8}, path.name
    model = StreamingModel(out / "models" / "step_float32.tflite")
    last = []
    for digit in test.x[:200]:
        model.reset()
        last.append([model.step(row) for row in digit][-1])
    last = np.stack(last)
    np.testing.assert_allclose(last, reference[:200, -1], atol=TOLERANCES["float32"], rtol=0)
    assert np.mean(last.argmax(-1) == test.y[:200]) > 0.9


def test_cli_writes_verified_files_and_checks_its_flags(trained, tmp_path):
    _, checkpoint, *_ = trained
    command = [
        sys.executable, "-m", "converters.tflstm_convert", f"--checkpoint_dir={checkpoint}",
        f"--out_dir={tmp_path}", "--quantize=float32",
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| step_float32.tflite | step | float32 |" in done.stdout
    assert {p.name for p in tmp_path.iterdir()} >= {
        "sequence_float32.tflite", "sequence_float32.json", "step_float32.tflite",
        "step_float32.json", "report.json",
    }
    missing = subprocess.run(
        [sys.executable, "-m", "converters.tflstm_convert", f"--checkpoint_dir={tmp_path}", "--out_dir=x"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert missing.returncode != 0 and "--checkpoint_dir must contain spec.json" in missing.stderr


def test_float32_error_above_limit_is_a_failure():
    def report(name, quantization, error):
        return VariantReport(name, "step", quantization, 1, 100, error, None)

    reports = [report("a", "float32", 2e-5), report("b", "float32", 1e-6), report("c", "int8", 0.05)]
    assert [r.name for r in export.float32_failures(reports)] == ["a"]


def test_models_run_in_the_edge_venv_without_tensorflow(trained, tmp_path):
    """tflite-runtime 2.14 loads every file and matches TensorFlow, in its own process."""
    out, _, test, reference, _ = trained
    edge_python = os.environ.get("TFLSTM_EDGE_PYTHON", str(ROOT / ".venv-edge" / "bin" / "python"))
    assert Path(edge_python).exists(), f"{edge_python} is missing: run `make test`, which builds it."
    np.savez(tmp_path / "reference.npz", x=test.x[:60], y=reference[:60])
    done = subprocess.run(
        [edge_python, str(ROOT / "tests" / "edge_check.py"), str(out / "models"), str(tmp_path / "reference.npz")],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["tensorflow_imported"] is False
    assert result["backend"] == "tflite_runtime"
    assert set(result["errors"]) == {
        export.model_file_name(kind, q, batch)
        for q in QUANTIZATIONS for kind, batch in (("sequence", 1), ("step", 1), ("step", 64))
    }
    for name, error in result["errors"].items():
        quantize = name.rsplit("_", 1)[1].removesuffix(".tflite")
        assert error <= TOLERANCES[quantize], (name, error)
