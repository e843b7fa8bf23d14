"""`tflstm run`, `tflstm info` and `tflstm bench` (and the `python -m tflstm.runtime` alias):
outputs, state files, signals, and one-line errors. Runs in both venvs (no TensorFlow needed)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tflstm.format import TOLERANCES, ModelMetadata, read_metadata
from tflstm.runtime import StreamingModel

TFLSTM = str(Path(sys.executable).parent / "tflstm")
OTHER_BACKEND = {"litert": "tflite_runtime", "tflite_runtime": "litert"}


def tflstm(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([TFLSTM, *args], input=stdin, capture_output=True, text=True, timeout=120)


def csv_text(rows: np.ndarray) -> str:
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows)


def assert_one_error_line(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_csv_on_stdin_prints_one_line_per_step(fixtures, reference, backend):
    csv = "a,b,c\n" + csv_text(reference["x"][0])
    done = tflstm("run", str(fixtures / "step_float32.tflite"), "--backend", backend, stdin=csv)
    assert done.returncode == 0, done.stderr
    printed = np.array([[float(v) for v in line.split(",")] for line in done.stdout.splitlines()])
    np.testing.assert_allclose(printed, reference["y"][0], atol=TOLERANCES["float32"], rtol=1e-5)


def test_raw_rows_are_normalized_as_the_metadata_says(fixtures, reference, backend, tmp_path):
    (tmp_path / "raw.csv").write_text(csv_text(reference["raw_x"][0]))
    done = tflstm("run", str(fixtures / "step_normalized_float32.tflite"), "--input", str(tmp_path / "raw.csv"),
                  "--backend", backend)
    assert done.returncode == 0, done.stderr
    printed = np.array([[float(v) for v in line.split(",")] for line in done.stdout.splitlines()])
    np.testing.assert_allclose(printed, reference["y"][0], atol=1e-5, rtol=1e-5)


def test_module_alias_npy_in_npy_out_and_state_files(fixtures, reference, backend, tmp_path):
    """`python -m tflstm.runtime` is `tflstm run`; the state saved at the end of the input continues."""
    x = reference["x"][1]
    np.save(tmp_path / "first.npy", x[:5])
    np.save(tmp_path / "rest.npy", x[5:])
    model = str(fixtures / "step_int8.tflite")

    def alias(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tflstm.runtime", model, "--backend", backend, *args],
                              capture_output=True, text=True, timeout=120)

    first = alias("--input", str(tmp_path / "first.npy"), "--output", str(tmp_path / "a.npy"),
                  "--save-state", str(tmp_path / "s.state"))
    assert first.returncode == 0, first.stderr
    rest = alias("--input", str(tmp_path / "rest.npy"), "--output", str(tmp_path / "b.npy"),
                 "--load-state", str(tmp_path / "s.state"))
    assert rest.returncode == 0, rest.stderr
    streaming = StreamingModel(model, backend=backend)
    expected = np.stack([streaming.step(row) for row in x])
    np.testing.assert_array_equal(np.concatenate([np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")]), expected)


@pytest.mark.parametrize("stdin, message", [
    ("1,2,3\n1,2\n", "<stdin>, line 2: `x` must be one time step of shape [3] or [1, 3] or [1, 1, 3], got [2]"),
    ("1,2,3\n1,x,3\n", "<stdin>, line 2: expected comma-separated numbers, got '1,x,3'"),
    ("1,x,3\n1,2,3\n", "<stdin>, line 1: expected comma-separated numbers"),  # has numbers: not a header
    ("a,b,c\n\nd,e,f\n", "<stdin>, line 3: expected comma-separated numbers"),  # a second header
])
def test_a_line_that_does_not_parse_is_an_error_with_its_line(fixtures, backend, stdin, message):
    done = tflstm("run", str(fixtures / "step_float32.tflite"), "--backend", backend, stdin=stdin)
    assert_one_error_line(done, message)


def test_state_after_the_last_good_row_is_saved_when_a_row_is_refused(fixtures, reference, backend, tmp_path):
    x = reference["x"][0]
    (tmp_path / "rows.csv").write_text("f1,f2,f3\n" + csv_text(x[:2]) + "1,2\n")
    model = str(fixtures / "step_float32.tflite")
    done = tflstm("run", model, "--input", str(tmp_path / "rows.csv"), "--save-state", str(tmp_path / "s.state"),
                  "--backend", backend)
    assert_one_error_line(done, f"{tmp_path / 'rows.csv'}, line 4: `x` must be one time step",
                          f"the state after 2 row(s) was saved to {tmp_path / 's.state'}")
    assert len(done.stdout.splitlines()) == 2
    saved, stepped = StreamingModel(model, backend=backend), StreamingModel(model, backend=backend)
    saved.load_state(tmp_path / "s.state")
    for row in x[:2]:
        stepped.step(row)
    for name, value in stepped.state.items():
        np.testing.assert_array_equal(saved.state[name], value)


def user_error_cases(fixtures: Path, tmp: Path, backend: str) -> list[tuple[list[str], str]]:
    model = str(fixtures / "step_float32.tflite")
    content = (fixtures / "step_float32.tflite").read_bytes()
    (tmp / "truncated.tflite").write_bytes(content[: len(content) // 2])
    (tmp / "text.tflite").write_text("not a model")
    (tmp / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    (tmp / "folder").mkdir()
    return [
        ([str(tmp / "truncated.tflite")], ".tflite"),  # the runtime's ModelError, whatever its wording
        ([str(tmp / "text.tflite")], ".tflite"),
        ([str(tmp / "missing.tflite")], "No such file"),
        ([model, "--backend", OTHER_BACKEND[backend]], "pip install"),
        ([model, "--input", str(tmp / "missing.csv")], "--input"),
        ([model, "--input", str(tmp / "bad.npy")], "bad.npy: not a readable .npy file"),
        ([model, "--output", str(tmp / "no" / "out.csv")], f"the folder {tmp / 'no'} does not exist"),
        ([model, "--save-state", str(tmp / "folder")], "is a folder"),
        ([model, "--load-state", str(tmp / "missing.state")], "missing.state"),
        ([model, "--threads", "0"], "argument --threads: expected a positive integer, got '0'"),
        ([model, "--backend", "gpu"], "argument --backend: invalid choice: 'gpu'"),
    ]


def test_user_errors_are_one_line_without_a_traceback(fixtures, backend, tmp_path):
    for args, message in user_error_cases(fixtures, tmp_path, backend):
        done = tflstm("run", *args, stdin="1,2,3\n")
        assert_one_error_line(done, message)
        assert done.stdout == ""


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM", "end of input"])
def test_state_is_saved_on_ctrl_c_sigterm_and_end_of_input(fixtures, reference, backend, tmp_path, stop):
    """Rows fed slowly, as `tail -f` does: the stream stops cleanly and its state is saved."""
    x, model = reference["x"][2], str(fixtures / "step_float32.tflite")
    state_file = tmp_path / "s.state"
    process = subprocess.Popen([TFLSTM, "run", model, "--save-state", str(state_file), "--backend", backend],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for row in x[:4]:
            process.stdin.write(csv_text(row[None]))
            process.stdin.flush()
            assert process.stdout.readline().count(",") == 1  # its output came before the next row is sent
        if stop == "end of input":
            process.stdin.close()
        else:
            process.send_signal(getattr(signal, stop))
        process.wait(timeout=60)
    finally:
        process.kill()
    stderr = process.stderr.read()
    assert "Traceback" not in stderr
    if stop == "end of input":
        assert process.returncode == 0 and stderr == ""
    else:
        assert process.returncode == 128 + getattr(signal, stop)
        assert stderr.strip() == f"tflstm run: stopped by {stop} after 4 row(s); the state after 4 row(s) was saved to {state_file}"
    saved, stepped = StreamingModel(model, backend=backend), StreamingModel(model, backend=backend)
    saved.load_state(state_file)
    for row in x[:4]:
        stepped.step(row)
    for name, value in stepped.state.items():
        np.testing.assert_array_equal(saved.state[name], value)


def test_info_describes_the_model_without_an_interpreter(fixtures):
    path = fixtures / "step_int8.tflite"
    meta = read_metadata(path.read_bytes())
    done = tflstm("info", str(path))
    assert done.returncode == 0, done.stderr
    facts: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():  # "label<at least two spaces>text"
        label, text = re.split(r"\s{2,}", line, maxsplit=1)
        facts.setdefault(label, []).append(text)
    assert facts["kind"] == ["step (one time step per invoke, state carried)"]
    assert facts["quantization"] == ["int8"]
    assert len(facts["state"]) == 4 and facts["state"][0].startswith("lstm_0/h int8[1, 16] (scale ")
    assert facts["state"][1].startswith("lstm_0/c int16[1, 16] (scale ")
    assert facts["input"] == ["features float32[1, 1, 3]"] and facts["output"] == ["predictions float32[1, 1, 2]"]
    assert facts["normalization"] == ["none (inputs are fed as they are)"]
    assert facts["per invoke"] == ["batch 1 x 1 time step(s)"]
    assert facts["fused ops"][0].startswith("2 UNIDIRECTIONAL_SEQUENCE_LSTM of ")
    assert facts["file size"] == [f"{path.stat().st_size:,} bytes ({path.stat().st_size / 1024:.1f} KiB)"]
    assert facts["fingerprint"] == [meta.fingerprint]
    as_json = tflstm("info", str(path), "--json")
    assert ModelMetadata.from_json(as_json.stdout) == meta
    normalized = tflstm("info", str(fixtures / "step_normalized_float32.tflite"))
    assert "normalization  (x - mean) / std, mean [0.5, -1, 2], std [2, 0.5, 4]" in normalized.stdout


def test_repr_says_the_same_in_one_line(fixtures, backend):
    path = fixtures / "step_normalized_float32.tflite"
    meta = read_metadata(path.read_bytes())
    text = repr(StreamingModel(path, backend=backend, streams="swap"))
    assert "\n" not in text
    assert text == (
        "StreamingModel(step_normalized_float32.tflite: step float32, input features float32[1, 1, 3], "
        "output predictions float32[1, 1, 2], states lstm_0/h[1, 16] lstm_0/c[1, 16] lstm_1/h[1, 8] lstm_1/c[1, 8], "
        f"normalization mean/std of 3 features, batch 1 x 1 step(s), 2 fused LSTM ops, "
        f"{path.stat().st_size / 1024:.1f} KiB, fingerprint {meta.fingerprint[:12]}, backend {backend}, streams swap, hot path C)"
    )


def test_bench_times_steps(fixtures, backend):
    done = tflstm("bench", str(fixtures / "step_dynamic.tflite"), "--steps", "100", "--warmup", "10",
                  "--backend", backend)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("StreamingModel(step_dynamic.tflite: step dynamic")
    assert lines[1].startswith("load ") and "100 steps after 10 warm-up, 1 thread(s)" in lines[1]
    median, p90, p99 = (float(lines[2].split(name)[1].split()[0]) for name in ("median", "p90", "p99"))
    assert 0 < median <= p90 <= p99


def test_runtime_commands_never_import_tensorflow(fixtures):
    script = (
        "import sys\nfrom tflstm.cli.main import main\n"
        f"main(['info', {str(fixtures / 'step_float32.tflite')!r}])\n"
        f"main(['bench', {str(fixtures / 'step_float32.tflite')!r}, '--steps', '5', '--warmup', '1'])\n"
        "print('TF', any(m.split('.')[0] == 'tensorflow' for m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "TF False"
