"""Your own data end to end with the command: `tflstm train` (.npz and .csv) -> `tflstm convert`
-> `tflstm run` on raw rows, which gives TensorFlow's answers because the models carry the
training normalization."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tflstm.format import TOLERANCES, read_metadata
from tflstm.train import builder
from tflstm.train.spec import ModelSpec

TFLSTM = str(Path(sys.executable).parent / "tflstm")
STEPS, CLASSES = 12, 3


def tflstm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([TFLSTM, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def sensor_like(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows [n, STEPS, 3] of raw values far from 0 and 1 (offsets, scales), and their classes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n)
    t = np.arange(STEPS)[None]
    x = np.stack([
        100 + 40 * np.sin(t * (0.3 + 0.4 * y[:, None]) + rng.uniform(0, 6, (n, 1))),
        0.01 * rng.normal(size=(n, STEPS)),
        -20 + 5 * np.cos(t * 0.2 * (1 + y[:, None])),
    ], axis=-1)
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("own_data")
    x, y = sensor_like(90, seed=0)
    np.savez(folder / "walks.npz", x=x, y=y)
    done = tflstm("train", "--data", "walks.npz", "--out-dir", "run", "--layers", "16", "--epochs", "4", cwd=folder)
    return folder, x, done


def test_train_prints_progress_and_writes_a_checkpoint_with_the_normalization(trained):
    folder, x, done = trained
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == ""  # TensorFlow's logs silenced
    lines = done.stdout.splitlines()
    assert lines[0] == "walks.npz: 90 sequences of 12 steps x 3 features; training on 72, holding out 18"
    epochs = [line for line in lines if line.startswith("epoch")]
    assert len(epochs) == 4
    assert all(re.fullmatch(r"epoch \d/4  loss \d+\.\d{4}  train accuracy [01]\.\d{4}  \d+\.\d\d s", e) for e in epochs)
    assert re.search(r"^held-out accuracy [01]\.\d{4} on 18 sequences", done.stdout, re.M)
    assert lines[-1] == "next: tflstm convert run/checkpoint"
    spec = ModelSpec.load(folder / "run" / "checkpoint")
    assert (spec.input_depth, spec.time_steps, spec.num_outputs, spec.head) == (3, STEPS, CLASSES, "classification")
    np.testing.assert_allclose(spec.normalization["mean"], x.mean((0, 1)), rtol=0.05, atol=0.01)
    np.testing.assert_allclose(spec.normalization["std"], x.std((0, 1)), rtol=0.1)
    with np.load(folder / "run" / "checkpoint" / "held_out.npz") as held:
        assert held["x"].shape == (18, STEPS, 3) and held["calibration"].shape == (72, STEPS, 3)


def test_convert_writes_models_that_take_raw_rows(trained):
    folder, _, _ = trained
    done = tflstm("convert", "run/checkpoint", "--quantize", "float32,int8", cwd=folder)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == ""
    assert "| step_int8.tflite | step | int8 |" in done.stdout
    spec = ModelSpec.load(folder / "run" / "checkpoint")
    models = folder / "run" / "models"
    assert sorted(p.name for p in models.glob("*.tflite")) == [
        "sequence_float32.tflite", "sequence_int8.tflite", "step_float32.tflite", "step_int8.tflite"]
    for path in models.glob("*.tflite"):
        assert read_metadata(path.read_bytes()).normalization == spec.normalization, path.name
    assert json.loads((models / "step_float32.json").read_text())["normalization"] == spec.normalization
    raw, _ = sensor_like(2, seed=1)
    (folder / "raw.csv").write_text("".join(",".join(repr(float(v)) for v in row) + "\n" for row in raw[0]))
    streamed = tflstm("run", "run/models/step_float32.tflite", "--input", "raw.csv", cwd=folder)
    assert streamed.returncode == 0, streamed.stderr
    printed = np.array([[float(v) for v in line.split(",")] for line in streamed.stdout.splitlines()])
    expected = builder.predict(folder / "run" / "checkpoint", raw[:1])[0]
    np.testing.assert_allclose(printed, expected, atol=TOLERANCES["float32"], rtol=1e-5)


def test_csv_layout_trains_the_same_model_shape(tmp_path):
    x, y = sensor_like(20, seed=2)
    lines = ["sequence,label,accel,noise,gyro"]
    lines += [f"rec{n},{y[n]},{','.join(f'{v:.5f}' for v in row)}" for n in range(len(x)) for row in x[n]]
    (tmp_path / "walks.csv").write_text("\n".join(lines) + "\n")
    done = tflstm("train", "--data", "walks.csv", "--out-dir", "run", "--layers", "8,4", "--epochs", "1",
                  "--head", "regression", "--every-step", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"^epoch 1/1  loss \S+  train MAE \S+", done.stdout, re.M)
    assert re.search(r"^held-out MAE \d+\.\d{4} on 4 sequences", done.stdout, re.M)
    spec = ModelSpec.load(tmp_path / "run" / "checkpoint")
    assert [layer.num_units for layer in spec.layers] == [8, 4]
    assert (spec.input_depth, spec.time_steps, spec.num_outputs, spec.head) == (3, STEPS, 1, "regression")
