"""Every CLI on bad arguments: one `error:` line on stderr, exit code 2, no traceback; `--help`
exits 0; the TensorFlow commands answer help and argument errors without importing it, and
say how to install it where it is missing (the edge venv)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tflstm.cli.main import COMMANDS
from tflstm.train.spec import CHECKPOINT_PREFIX, LayerSpec, ModelSpec

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
EDGE_BIN = Path(os.environ.get("TFLSTM_EDGE_PYTHON", ROOT / ".venv-edge" / "bin" / "python")).parent
ABSL_CLIS = ("converters.tflstm_convert", "converters.make_assets", "benchmarks.run")


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """Data files and a checkpoint folder (spec + an index file) that the bad calls point at."""
    folder = tmp_path_factory.mktemp("cli")
    x = np.random.default_rng(0).normal(size=(12, 5, 3)).astype(np.float32)
    np.savez(folder / "good.npz", x=x, y=np.arange(12) % 2)
    np.savez(folder / "no_x.npz", features=x, y=np.arange(12) % 2)
    np.savez(folder / "no_y.npz", x=x)
    np.savez(folder / "two_features.npz", x=x[:, :, :2], y=np.arange(12) % 2)
    np.savez(folder / "four_steps.npz", x=x[:, :4], y=np.arange(12) % 2)
    (folder / "afile").write_text("")
    checkpoint = folder / "checkpoint"
    checkpoint.mkdir()
    ModelSpec(input_depth=3, layers=(LayerSpec(4),), head="classification", num_outputs=2, time_steps=5).save(checkpoint)
    (checkpoint / f"{CHECKPOINT_PREFIX}.index").write_bytes(b"")
    return folder


TFLSTM_ERRORS = [
    ([], "the following arguments are required: COMMAND"),
    (["bogus"], "argument COMMAND: invalid choice: 'bogus'"),
    (["train", "--out-dir", "o"], "the following arguments are required: --data"),
    (["train", "--data", "missing.npz", "--out-dir", "o"], "missing.npz: no such file"),
    (["train", "--data", "no_x.npz", "--out-dir", "o"], "no_x.npz: no `x` array"),
    (["train", "--data", "no_y.npz", "--out-dir", "o"], "no_y.npz: no `y` array"),
    (["train", "--data", "good.npz", "--out-dir", "afile"], "--out-dir afile is a file; give a folder"),
    (["train", "--data", "good.npz", "--out-dir", "o", "--layers", "32,0"], "argument --layers: expected a positive"),
    (["train", "--data", "good.npz", "--out-dir", "o", "--held-out", "1.5"], "argument --held-out: expected a number"),
    (["train", "--data", "good.npz", "--out-dir", "o", "--head", "binary", "--num-outputs", "2"],
     "binary targets need 2 value(s) per sequence, got 1"),
    (["convert", "nowhere"], "nowhere does not exist: give a checkpoint folder or a saved Keras model"),
    (["convert", "o"], "o does not exist: give a checkpoint folder or a saved Keras model"),
    (["convert", "checkpoint", "--data", "two_features.npz"],
     "two_features.npz: the model takes sequences of 5 time steps of 3 features, [n, 5, 3]; got [12, 5, 2]"),
    (["convert", "checkpoint", "--data", "four_steps.npz"], "got [12, 4, 3]"),
    (["convert", "checkpoint", "--data", "good.npz", "--out-dir", "afile"], "--out-dir afile is a file"),
    (["convert", "checkpoint", "--quantize", "int4"], "argument --quantize: int4 not in float32, float16"),
    (["convert", "checkpoint", "--step-batch-sizes", "1,x"], "argument --step-batch-sizes: expected a positive"),
    (["convert", "checkpoint"], "checkpoint has no held_out.npz and names no built-in dataset"),
    (["demo", "cats"], "argument which: invalid choice: 'cats'"),
    (["demo", "--out-dir", "afile"], "--out-dir afile is a file"),
    (["run", "model.tflite", "--threads", "x"], "argument --threads: expected a positive integer, got 'x'"),
    (["info"], "the following arguments are required: model"),
    (["bench", "model.tflite", "--steps", "0"], "argument --steps: expected a positive integer"),
]

ABSL_ERRORS = [
    (["converters.tflstm_convert", "--checkpoint_dir=checkpoint", "--out_dir=o", "--quantize=int4"],
     "--quantize takes a comma-separated list of float32, float16, dynamic, int8"),
    (["converters.tflstm_convert", "--checkpoint_dir=nowhere", "--out_dir=o"], "--checkpoint_dir must contain spec.json"),
    (["converters.tflstm_convert", "--checkpoint_dir=checkpoint", "--out_dir=afile"], "--out_dir must be a folder"),
    (["converters.tflstm_convert", "--out_dir=o"], "--checkpoint_dir"),
    (["converters.tflstm_convert", "--checkpoint_dir=checkpoint", "--out_dir=o", "--data=two_features.npz"],
     "two_features.npz: the model takes sequences of 5 time steps of 3 features"),
    (["converters.make_assets", "--out_dir=afile"], "--out_dir must be a folder"),
    (["converters.make_assets", "--epochs=0"], "--epochs"),
    (["converters.make_assets", "--out_dir=o", "--checkpoint_dir=checkpoint"], "holds a model trained on None, not the digits"),
    (["benchmarks.run", "--sizes=XL"], "--sizes takes a comma-separated list of S, M, L"),
    (["benchmarks.run", "--suite=huge"], "--suite"),
]


def assert_one_error_line(done: subprocess.CompletedProcess, fragment: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-2000:]
    assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.parametrize("args, fragment", TFLSTM_ERRORS, ids=[" ".join(a) or "none" for a, _ in TFLSTM_ERRORS])
def test_tflstm_user_errors_are_one_line(workdir, args, fragment):
    assert_one_error_line(run([str(BIN / "tflstm"), *args], workdir), fragment)


@pytest.mark.parametrize("args, fragment", ABSL_ERRORS, ids=[" ".join(a) for a, _ in ABSL_ERRORS])
def test_absl_cli_user_errors_are_one_line(workdir, args, fragment):
    env_root = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", *args], cwd=workdir, capture_output=True, text=True, timeout=300,
                          env=env_root)
    assert_one_error_line(done, fragment)


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_help_exits_0(command):
    done = run([str(BIN / "tflstm"), *command, "--help"], ROOT)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.startswith(f"usage: tflstm {' '.join(command)}".rstrip())


@pytest.mark.parametrize("module", [*ABSL_CLIS, "tflstm.runtime"])
def test_module_help_exits_0(module):
    done = run([sys.executable, "-m", module, "--help"], ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--" in done.stdout and "Traceback" not in done.stderr


def test_help_and_argument_errors_do_not_import_tensorflow(workdir):
    """What makes them instant: TensorFlow is imported only once a TensorFlow command has work to do."""
    calls = [["--help"], ["train", "--help"], ["convert", "--help"], ["demo", "--help"], ["train", "--data", "x"],
             ["convert", "checkpoint", "--data", "two_features.npz"], ["train", "--data", "no_y.npz", "--out-dir", "o"]]
    script = (
        "import sys\nfrom tflstm.cli.main import main\n"
        f"for argv in {calls!r}:\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "sys.stderr.write('TF %s' % any(m.split('.')[0] == 'tensorflow' for m in sys.modules))\n"
    )
    done = run([sys.executable, "-c", script], workdir)
    assert done.stderr.splitlines()[-1] == "TF False", done.stderr


@pytest.mark.parametrize("command", [["train", "--data", "good.npz", "--out-dir", "o"], ["demo", "digits"],
                                     ["convert", "checkpoint", "--data", "good.npz"]])
def test_without_tensorflow_the_commands_say_what_to_install(workdir, command):
    tflstm = EDGE_BIN / "tflstm"
    assert tflstm.exists(), f"{tflstm} is missing: run `make test`, which builds the edge venv."
    assert_one_error_line(run([str(tflstm), *command], workdir), "pip install 'tflstm[")
    assert "needs tensorflow" in run([str(tflstm), *command], workdir).stderr


def test_edge_install_has_help_without_tensorflow_or_absl():
    done = run([str(EDGE_BIN / "tflstm"), "--help"], ROOT)
    assert done.returncode == 0 and "run" in done.stdout


def test_serve_without_its_extra_says_what_to_install(workdir):
    """The edge venv has the runtime but not the server's libraries."""
    done = run([str(EDGE_BIN / "tflstm"), "serve", "model.tflite"], workdir)
    assert_one_error_line(done, "pip install 'tflstm[serve]'")
    assert run([str(EDGE_BIN / "tflstm"), "serve", "--help"], workdir).returncode == 0
