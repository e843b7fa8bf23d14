"""Runtime tests: run in the main venv (ai-edge-litert) and in the edge venv (tflite-runtime).

They read models and TensorFlow references from the fixtures folder that
`tests/make_fixtures.py` writes (`make test` does it first); in the main venv a
missing folder is generated on the spot.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(os.environ.get("TFLSTM_FIXTURES", ROOT / "build" / "fixtures"))
BACKEND = "litert" if importlib.util.find_spec("ai_edge_litert") else "tflite_runtime"


@pytest.fixture(scope="session")
def fixtures() -> Path:
    if not (FIXTURES / "reference.npz").exists():
        if importlib.util.find_spec("tensorflow") is None:
            pytest.fail(f"{FIXTURES} is missing and TensorFlow is not here to make it: run `make test`.")
        subprocess.run([sys.executable, str(ROOT / "tests" / "make_fixtures.py"), str(FIXTURES)], check=True)
    return FIXTURES


@pytest.fixture(scope="session")
def reference(fixtures) -> dict[str, np.ndarray]:
    with np.load(fixtures / "reference.npz") as npz:
        return {key: npz[key] for key in npz.files}


@pytest.fixture(scope="session")
def backend() -> str:
    return BACKEND
