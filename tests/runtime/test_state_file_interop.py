"""One state-file format for Python and Android: the Java class behind StreamingLstm.kt reads
what Python writes, and Python reads what it writes (compiled and run on this machine's JVM)."""

from __future__ import annotations

import shutil
import subprocess
import numpy as np
import pytest

from tflstm.runtime import StateError, StreamingModel
from tflstm.runtime.state_file import read_state

from conftest import ROOT


@pytest.fixture(scope="module")
def java(tmp_path_factory) -> list[str]:
    """The compiled interop driver, as a command prefix."""
    assert shutil.which("javac") and shutil.which("java"), "a JDK (javac, java) is needed: this machine image has Java 17"
    classes = tmp_path_factory.mktemp("classes")
    subprocess.run(
        ["javac", "--release", "8", "-Xlint:-options", "-d", str(classes),
         str(ROOT / "android_assets" / "TflstmStateFile.java"), str(ROOT / "tests" / "java" / "StateFileInterop.java")],
        check=True, capture_output=True, text=True,
    )
    return ["java", "-cp", str(classes), "StateFileInterop", "copy"]


@pytest.mark.parametrize("model_name", ["step_int8.tflite", "step_float32.tflite"])
def test_java_reads_python_state_and_python_reads_java_state(java, fixtures, backend, model_name, tmp_path):
    model = StreamingModel(fixtures / model_name, backend=backend)
    for row in np.random.default_rng(3).normal(size=(5, model.input_depth)).astype(np.float32):
        model.step(row)
    model.save_state(tmp_path / "python.state")
    fingerprint = model.metadata.fingerprint
    done = subprocess.run([*java, str(tmp_path / "python.state"), str(tmp_path / "java.state"), fingerprint],
                          capture_output=True, text=True, check=True)
    printed = {line.split(" ", 1)[0]: line.split(" ", 3) for line in done.stdout.splitlines()}
    state = model.state
    assert list(printed) == list(state)  # file order: the model's state order, h before c
    for name, value in state.items():
        _, type_code, shape, data = printed[name]
        assert shape == "x".join(str(d) for d in value.shape)
        assert {"0": "float32", "9": "int8", "7": "int16"}[type_code] == value.dtype.name
        assert bytes.fromhex(data) == value.astype(value.dtype.newbyteorder("<")).tobytes()
    assert (tmp_path / "java.state").read_bytes() == (tmp_path / "python.state").read_bytes()
    restored = StreamingModel(fixtures / model_name, backend=backend)
    restored.load_state(tmp_path / "java.state")
    for name, value in restored.state.items():
        np.testing.assert_array_equal(value, state[name])


def test_java_refuses_damage_and_other_models(java, fixtures, backend, tmp_path):
    model = StreamingModel(fixtures / "step_float32.tflite", backend=backend)
    model.save_state(tmp_path / "s.state")
    blob = bytearray((tmp_path / "s.state").read_bytes())
    blob[30] ^= 0x10
    (tmp_path / "damaged.state").write_bytes(bytes(blob))
    for path, fingerprint, message in (
        (tmp_path / "damaged.state", model.metadata.fingerprint, "is damaged: its checksum does not match"),
        (tmp_path / "s.state", "0" * 64, "holds the state of another model"),
    ):
        done = subprocess.run([*java, str(path), str(tmp_path / "out.state"), fingerprint], capture_output=True, text=True)
        assert done.returncode == 3 and message in done.stdout, done.stdout + done.stderr
    with pytest.raises(StateError, match="checksum does not match"):
        read_state(tmp_path / "damaged.state", model.metadata.fingerprint)
