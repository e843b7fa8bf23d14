"""The benchmark models S, M, L: seeded weights, converted files and TensorFlow references.

Needs TensorFlow. Writes, per size, into `DIR/<size>/`: `checkpoint/`, the step
models `step_<quantization>.tflite`, batched `step_b<N>_float32.tflite` and chunk
models `step_k<K>_float32.tflite` (K time steps per call), and
`reference.npz` (x [streams, steps, depth] and TensorFlow's float32 outputs y).
A device without TensorFlow benchmarks such a folder made elsewhere.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from tflstm.fused_op import GATES, weight_name

SIZES = {
    # name: (depth, units, outputs, head)
    "S": (3, (32, 16), 1, "binary"),
    "M": (40, (128, 128), 10, "classification"),
    "L": (40, (512, 512), 10, "classification"),
}
ACTIVATIONS = {"binary": "sigmoid", "classification": "softmax", "regression": "linear"}


@dataclasses.dataclass(frozen=True)
class ModelFiles:
    """Where one size's files are."""

    folder: Path

    def step(self, quantize: str, batch: int = 1) -> Path:
        """A step model file."""
        return self.folder / (f"step_{quantize}.tflite" if batch == 1 else f"step_b{batch}_{quantize}.tflite")

    def chunk(self, quantize: str, steps_per_call: int) -> Path:
        """A chunk model file: `steps_per_call` time steps per call."""
        return self.folder / f"step_k{steps_per_call}_{quantize}.tflite"

    @property
    def reference(self) -> Path:
        return self.folder / "reference.npz"

    @property
    def checkpoint(self) -> Path:
        return self.folder / "checkpoint"


def build(
    size: str, out: Path, quantizations: tuple[str, ...], batches: tuple[int, ...], chunks: tuple[int, ...],
    streams: int, steps: int, seed: int = 0,
) -> ModelFiles:
    """Makes one size's checkpoint (glorot weights, seeded), models and reference.

    Step models per quantization, batched step models and chunk models (`chunks`
    time steps per call) in float32.
    """
    import tensorflow as tf

    from tflstm.convert.checkpoint import convert_checkpoint
    from tflstm.train import builder

    depth, units, outputs, head = SIZES[size]
    files = ModelFiles(out / size)
    spec = builder.ModelSpec(
        input_depth=depth, layers=tuple(builder.LayerSpec(u) for u in units), head=head,
        num_outputs=outputs, time_steps=8,
    )
    model = builder.build(spec, spec.time_steps, None, seed=seed)
    with model.graph.as_default(), tf.compat.v1.Session(graph=model.graph) as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        files.checkpoint.mkdir(parents=True, exist_ok=True)
        tf.compat.v1.train.Saver().save(sess, str(files.checkpoint / builder.CHECKPOINT_PREFIX))
    spec.save(files.checkpoint)
    rng = np.random.default_rng(seed)
    calibration = rng.normal(size=(100, spec.time_steps, depth)).astype(np.float32)
    for quantize in quantizations:
        files.step(quantize).write_bytes(convert_checkpoint(
            files.checkpoint, quantize=quantize, streaming=True,
            calibration=calibration if quantize == "int8" else None,
        ))
    for batch in batches:
        files.step("float32", batch).write_bytes(
            convert_checkpoint(files.checkpoint, streaming=True, batch_size=batch)
        )
    for k in chunks:
        files.chunk("float32", k).write_bytes(convert_checkpoint(files.checkpoint, streaming=True, steps_per_call=k))
    x = rng.normal(size=(streams, steps, depth)).astype(np.float32)
    np.savez(files.reference, x=x, y=builder.predict(files.checkpoint, x))
    return files


def peer_weights(files: ModelFiles) -> dict:
    """The weights dict of `benchmarks.peers` for one size, read from its checkpoint."""
    import tensorflow as tf

    from tflstm.train import builder

    spec = builder.ModelSpec.load(files.checkpoint)
    reader = tf.train.load_checkpoint(str(files.checkpoint / builder.CHECKPOINT_PREFIX))
    # The peers take plain LSTMs: no peephole or projection weights.
    names = [weight_name(kind, gate) for kind in ("input", "recurrent", "bias") for gate in GATES]
    return {
        "layers": [
            {name: reader.get_tensor(f"rnn/lstm_{k}/{name}") for name in names}
            for k in range(len(spec.layers))
        ],
        "head": {"kernel": reader.get_tensor("head/kernel"), "bias": reader.get_tensor("head/bias")},
        "activation": ACTIVATIONS[spec.head],
    }
