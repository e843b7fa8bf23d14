"""Shared test set-up: quiet TensorFlow before anything imports it; the demos' outputs.

The demo fixtures (TensorFlow) run the demos in short form once per session,
into the layout `tflstm demo` writes (`demo_out/digits`, `demo_out/motions`);
the digits pipeline, the sensor demo and the README tests read them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DIGITS_EPOCHS = 10
MOTIONS_EPOCHS, MOTIONS_UNITS = 2, (16,)


@pytest.fixture(scope="session")
def demo_out(tmp_path_factory) -> Path:
    """The folder the demos' short forms write into (`demo_out/` of `make demo`)."""
    return tmp_path_factory.mktemp("demo") / "demo_out"


@pytest.fixture(scope="session")
def digits_demo(demo_out):
    """(folder, conversion reports) of the digits demo, trained for DIGITS_EPOCHS epochs."""
    from tflstm.demos import digits

    folder = demo_out / "digits"
    return folder, digits.run(folder, epochs=DIGITS_EPOCHS)


@pytest.fixture(scope="session")
def motions_demo(demo_out):
    """(folder, conversion reports, streamed results) of the sensor demo, small and short."""
    from tflstm.demos import motions

    folder = demo_out / "motions"
    reports, streamed = motions.run(folder, epochs=MOTIONS_EPOCHS, units=MOTIONS_UNITS)
    return folder, reports, streamed
