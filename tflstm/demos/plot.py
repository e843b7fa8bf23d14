"""The sensor demo's picture: class probabilities over time, one panel per recording."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tflstm.demos.recognition import recognized_after


def probabilities(
    path: Path, outputs: np.ndarray, labels: np.ndarray, classes: Sequence[str], sample_rate_hz: float, title: str
) -> Path:
    """Writes a PNG with one panel per recording: each class's probability after each sample.

    Args:
        path: the PNG to write.
        outputs: float [recordings, time, classes] probabilities.
        labels: int [recordings] true classes.
        classes: class names.
        sample_rate_hz: samples per second (the x axis is in seconds).
        title: the figure's title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(2, len(outputs))
    rows = -(-len(outputs) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6 * columns, 3.2 * rows), squeeze=False, sharey=True)
    seconds = np.arange(1, outputs.shape[1] + 1) / sample_rate_hz
    for axis, recording, label in zip(axes.flat, outputs, labels):
        for k, name in enumerate(classes):
            axis.plot(seconds, recording[:, k], label=name, linewidth=2 if k == label else 1)
        after = recognized_after(recording, int(label))
        if after is None:
            axis.set_title(f"{classes[label]}: not recognized")
        else:
            axis.axvline(after / sample_rate_hz, color="black", linestyle="--", linewidth=1)
            axis.set_title(f"{classes[label]}: recognized after {after} samples ({after / sample_rate_hz:.1f} s)")
        axis.set_xlabel("seconds into the recording")
        axis.set_ylim(-0.02, 1.02)
    for axis in axes.flat[len(outputs):]:
        axis.axis("off")
    axes[0][0].set_ylabel("probability")
    axes[0][0].legend(loc="center right", fontsize="small")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
