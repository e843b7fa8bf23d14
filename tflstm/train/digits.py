"""The digits task: scikit-learn's 8x8 digits read row by row as 8 steps of 8 features.

The small cousin of the row-by-row MNIST tutorial; the data ships inside
scikit-learn, so nothing is downloaded.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

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
