"""The digits task: scikit-learn's 8x8 digits read row by row as 8 steps of 8 features.

The small cousin of the row-by-row MNIST tutorial; the data ships inside
scikit-learn, so nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from tflstm.train import builder

TIME_STEPS = 8
FEATURES = 8
NUM_CLASSES = 10


class Split(NamedTuple):
    """Batch-major sequences: x float32 [n, 8, 8] in [0, 1], y int64 [n] class labels."""

    x: np.ndarray
    y: np.ndarray


def load(test_fraction: float = 0.2, seed: int = 0) -> tuple[Split, Split]:
    """Returns (train, test), split at random with `seed`. Needs scikit-learn."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError("The digits data needs scikit-learn: pip install scikit-learn") from err
    if not 0 < test_fraction < 1:
        raise ValueError(f"`test_fraction` must be in (0, 1), got {test_fraction!r}.")
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return Split(x[train], y[train]), Split(x[test], y[test])


def spec() -> builder.ModelSpec:
    """The demo's model: 8 -> LSTM 128 -> LSTM 64 -> 10 classes."""
    return builder.ModelSpec(
        input_depth=FEATURES,
        layers=(builder.LayerSpec(128), builder.LayerSpec(64)),
        head="classification", num_outputs=NUM_CLASSES, time_steps=TIME_STEPS, dataset="digits",
    )


def train(
    checkpoint_dir: Path, data: Split, epochs: int, seed: int = 0,
    on_epoch: Callable[[int, float, float], None] | None = None,
) -> Path:
    """Trains the demo's classifier (`spec()`) on `data` and saves the checkpoint."""
    return builder.train(
        spec(), data.x, data.y, checkpoint_dir, epochs=epochs, learning_rate=5e-3, seed=seed, on_epoch=on_epoch,
    )
