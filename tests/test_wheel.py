"""`make wheel`, then the device installs the README shows: pip install 'dist/tflstm-...whl[litert]'
into a fresh venv gives a runtime-only `tflstm` (no TensorFlow, no absl) with the C hot path that streams
a model; the source distribution installed there compiles the C hot path too."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

from tflstm import __version__

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_installs_a_runtime_only_tflstm(tmp_path, digits_demo):
    dist = tmp_path / "dist"
    built = subprocess.run(["make", "-s", "wheel", f"DIST={dist}"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    wheel = dist / f"tflstm-{__version__}-cp311-cp311-{sysconfig.get_platform().replace('-', '_')}.whl"
    sdist = dist / f"tflstm-{__version__}.tar.gz"
    assert sorted(p.name for p in dist.iterdir()) == sorted([wheel.name, sdist.name])
    device = tmp_path / "device"
    subprocess.run([sys.executable, "-m", "venv", str(device)], check=True, timeout=300)
    installed = subprocess.run(
        [str(device / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", f"{wheel}[litert]"],
        capture_output=True, text=True, timeout=600,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    packages = subprocess.run([str(device / "bin" / "pip"), "list", "--format=freeze"], capture_output=True,
                              text=True, timeout=120).stdout.lower()
    assert "ai-edge-litert" in packages and f"tflstm=={__version__}" in packages
    assert "tensorflow" not in packages and "absl" not in packages
    model = digits_demo[0] / "models" / "step_float32.tflite"
    tflstm = str(device / "bin" / "tflstm")
    assert subprocess.run([tflstm, "--help"], capture_output=True, timeout=120).returncode == 0
    info = subprocess.run([tflstm, "info", str(model)], capture_output=True, text=True, timeout=120)
    assert info.returncode == 0 and "normalization  (x - mean) / std, mean [0, 0, 0, 0, 0, 0, ...]" in info.stdout
    digit = "\n".join(",".join(["0"] * 8) for _ in range(8)) + "\n"
    streamed = subprocess.run([tflstm, "run", str(model)], input=digit, capture_output=True, text=True, timeout=120)
    assert streamed.returncode == 0, streamed.stderr
    assert len(streamed.stdout.splitlines()) == 8
    train = subprocess.run([tflstm, "train", "--data", "x.npz", "--out-dir", "o"], capture_output=True, text=True,
                           cwd=tmp_path, timeout=120)
    assert train.returncode == 2 and "pip install 'tflstm[train]'" in train.stderr
    python = str(device / "bin" / "python")
    hot_path = [python, "-c", "from tflstm.runtime.executor import NATIVE; print(NATIVE.__file__)"]
    assert str(device) in subprocess.run(hot_path, capture_output=True, text=True, cwd=tmp_path, timeout=120,
                                         check=True).stdout
    from_source = subprocess.run(
        [str(device / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", "--force-reinstall",
         "--no-deps", str(sdist)],
        capture_output=True, text=True, timeout=600,
    )
    assert from_source.returncode == 0, from_source.stderr[-2000:]
    assert str(device) in subprocess.run(hot_path, capture_output=True, text=True, cwd=tmp_path, timeout=120,
                                         check=True).stdout
