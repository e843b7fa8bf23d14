"""`python -m tflstm.runtime`: stream CSV or .npy rows through a model."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from tflstm.format import TOLERANCES
from tflstm.runtime import StreamingModel


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tflstm.runtime", *args], input=stdin, capture_output=True, text=True, timeout=120
    )


def test_csv_on_stdin_prints_one_line_per_step(fixtures, reference, backend):
    x = reference["x"][0]
    csv = "a,b,c\n" + "".join(",".join(repr(float(v)) for v in row) + "\n" for row in x)
    done = run_cli(str(fixtures / "step_float32.tflite"), "--backend", backend, stdin=csv)
    assert done.returncode == 0, done.stderr
    printed = np.array([[float(v) for v in line.split(",")] for line in done.stdout.splitlines()])
    np.testing.assert_allclose(printed, reference["y"][0], atol=TOLERANCES["float32"], rtol=1e-5)


def test_npy_in_npy_out_and_state_files(fixtures, reference, backend, tmp_path):
    x = reference["x"][1]
    np.save(tmp_path / "first.npy", x[:5])
    np.save(tmp_path / "rest.npy", x[5:])
    model = str(fixtures / "step_int8.tflite")
    first = run_cli(model, "--backend", backend, "--input", str(tmp_path / "first.npy"),
                    "--output", str(tmp_path / "a.npy"), "--save-state", str(tmp_path / "s.state"))
    assert first.returncode == 0, first.stderr
    rest = run_cli(model, "--backend", backend, "--input", str(tmp_path / "rest.npy"),
                   "--output", str(tmp_path / "b.npy"), "--load-state", str(tmp_path / "s.state"))
    assert rest.returncode == 0, rest.stderr
    streaming = StreamingModel(model, backend=backend)
    expected = np.stack([streaming.step(row) for row in x])
    np.testing.assert_array_equal(np.concatenate([np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")]), expected)


def test_bad_rows_fail_with_a_message(fixtures, backend):
    done = run_cli(str(fixtures / "step_float32.tflite"), "--backend", backend, stdin="1,2,3\n1,2\n")
    assert done.returncode == 2
    assert "shape [3] or [1, 3] or [1, 1, 3], got [2]" in done.stderr
    done = run_cli(str(fixtures / "step_float32.tflite"), "--backend", backend, stdin="1,2,3\n1,x,3\n")
    assert done.returncode == 2 and "<stdin>, line 2: expected comma-separated numbers" in done.stderr
