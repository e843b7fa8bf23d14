"""The digits task: scikit-learn's 8x8 digits read row by row as 8 steps of 8 features.

The small cousin of the row-by-row MNIST tutorial; the data ships inside
scikit-learn, so nothing is downloaded. Features are raw pixel values 0..16;
the model's normalization (mean 0, std 16) scales them to 0..1, and the
converted models record it, so devices feed raw pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from tflstm.train.data import Split
from tflstm.train.spec import LayerSpec, ModelSpec

TIME_STEPS = 8
FEATURES = 8
NUM_CLASSES = 10
PIXEL_MAX = 16.0


def load(test_fraction: float = 0.2, seed: int = 0) -> tuple[Split, Split]:
    """Returns (train, test), split at random with `seed`: x float32 [n, 8, 8] pixels 0..16, y int64 [n].

    Needs scikit-learn.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError("The digits data needs scikit-learn: pip install scikit-learn") from err
    if not 0 < test_fraction < 1:
        raise ValueError(f"`test_fraction` must be in (0, 1), got {test_fraction!r}.")
    digits = load_digits()
    x = digits.images.astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return Split(x[train], y[train]), Split(x[test], y[test])


def spec() -> ModelSpec:
    """The demo's model: 8 -> LSTM 128 -> LSTM 64 -> 10 classes, on pixel / 16."""
    return ModelSpec(
        input_depth=FEATURES,
        layers=(LayerSpec(128), LayerSpec(64)),
        head="classification", num_outputs=NUM_CLASSES, time_steps=TIME_STEPS, dataset="digits",
        normalization={"mean": [0.0] * FEATURES, "std": [PIXEL_MAX] * FEATURES},
    )


def train(
    checkpoint_dir: Path, data: Split, epochs: int, seed: int = 0,
    on_epoch: Callable[[int, float, float], None] | None = None,
) -> Path:
    """Trains the demo's classifier (`spec()`) on `data` and saves the checkpoint."""
    from tflstm.train import builder

    return builder.train(
        spec(), data.x, data.y, checkpoint_dir, epochs=epochs, learning_rate=5e-3, seed=seed, on_epoch=on_epoch,
    )
