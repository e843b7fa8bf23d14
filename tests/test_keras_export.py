"""Saved Keras model -> verified folder: the library (`keras_export`) and the command (`converters.keras_convert`)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import keras
import pytest

import keras_models as km
from tflstm.convert import UnsupportedModelError
from tflstm.convert.keras_export import convert_and_verify_keras
from tflstm.format import TOLERANCES, ModelMetadata, read_metadata

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def saved_classifier(tmp_path_factory) -> Path:
    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("keras") / "classifier.keras"
    km.train(keras, km.stream_classifier(keras), per_step=False).save(path)
    return path


def run_command(*args: str, prelude: str = "") -> subprocess.CompletedProcess:
    """`python -m converters.keras_convert ARGS`, after running `prelude` in the same process."""
    code = f"{prelude}\nfrom absl import app\nfrom converters import keras_convert\napp.run(keras_convert.main)"
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
    )


def test_command_writes_verified_models_sidecars_and_report(saved_classifier, tmp_path):
    done = run_command(f"--model={saved_classifier}", f"--out_dir={tmp_path}", "--quantize=float32,int8")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    names = ["sequence_float32", "step_float32", "sequence_int8", "step_int8"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{n}.tflite" for n in names] + [f"{n}.json" for n in names] + ["report.json"]
    )
    for name in names:
        sidecar = ModelMetadata.from_json((tmp_path / f"{name}.json").read_text())
        assert sidecar == read_metadata((tmp_path / f"{name}.tflite").read_bytes())
    report = json.loads((tmp_path / "report.json").read_text())
    assert [r["name"] for r in report] == [f"{n}.tflite" for n in names]
    for row in report:
        assert row["max_abs_error"] <= TOLERANCES[row["quantization"]], row
    assert "| step_float32.tflite | step | float32 |" in done.stdout


def test_command_fails_when_float32_is_off_by_more_than_the_tolerance(saved_classifier, tmp_path):
    """A reference shifted by twice the tolerance stands for a float32 model that is off."""
    shift = 2 * TOLERANCES["float32"]
    prelude = (
        "import tflstm.convert.keras_export as export\n"
        "keras_outputs = export.keras_outputs\n"
        f"export.keras_outputs = lambda *args: keras_outputs(*args) + {shift}"
    )
    done = run_command(f"--model={saved_classifier}", f"--out_dir={tmp_path}", "--quantize=float32", prelude=prelude)
    assert done.returncode == 1
    for name in ("sequence_float32", "step_float32"):
        assert re.search(rf"error: {name}.tflite max abs error 2\.0\de-05 > 1e-05", done.stderr), done.stderr[-2000:]


def test_window_model_needs_steps_per_call_and_then_writes_a_chunk_model(tmp_path):
    keras.utils.set_random_seed(0)
    model = km.flatten_window(keras)
    x = km.synthetic(4, 3 * km.WINDOW, seed=1)
    with pytest.raises(UnsupportedModelError, match="Use steps_per_call=7"):
        convert_and_verify_keras(model, tmp_path / "refused", ["float32"], x, x)
    assert not (tmp_path / "refused").exists()  # refused before anything was written
    reports = convert_and_verify_keras(model, tmp_path / "chunks", ["float32"], x, x, steps_per_call=km.WINDOW)
    assert [(r.name, r.kind, r.time_steps) for r in reports] == [
        ("sequence_float32.tflite", "sequence", km.WINDOW), ("step_k7_float32.tflite", "step", km.WINDOW),
    ]
    assert all(r.max_abs_error <= TOLERANCES["float32"] for r in reports)


def test_tflstm_convert_takes_a_saved_keras_model(saved_classifier, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "tflstm", "convert", str(saved_classifier), "--out-dir", str(tmp_path),
         "--quantize", "float32"], cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| step_float32.tflite | step | float32 |" in done.stdout and "vs Keras" in done.stdout
    assert sorted(p.name for p in tmp_path.glob("*.tflite")) == ["sequence_float32.tflite", "step_float32.tflite"]
    refused = subprocess.run(
        [sys.executable, "-m", "tflstm", "convert", str(saved_classifier), "--out-dir", str(tmp_path / "b"),
         "--step-batch-sizes", "1,4"], cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert refused.returncode == 2 and refused.stderr.startswith("error: --step-batch-sizes and --int8-io apply to")
