"""Writes the models and TensorFlow references the runtime tests use (needs TensorFlow).

Usage: python tests/make_fixtures.py OUT_DIR

The runtime tests run in the main venv and in the edge venv, which has no
TensorFlow: this script, run by `make test` in the main venv, gives both the
same files. References come from TensorFlow, never from the runtime.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import numpy as np

from tflstm.console import quiet_tensorflow
from tflstm.train.spec import LayerSpec, ModelSpec

# TensorFlow is imported inside the functions, once `main` has silenced its logs.

STREAMS, STEPS, DEPTH, OUTPUTS = 3, 12, 3, 2
SPEC = ModelSpec(
    input_depth=DEPTH,
    layers=(LayerSpec(16, use_peepholes=True), LayerSpec(8)),
    head="regression", num_outputs=OUTPUTS, time_steps=STEPS,
)
# (file name, quantization, batch size)
MODELS = [
    ("step_float32.tflite", "float32", 1),
    ("step_float16.tflite", "float16", 1),
    ("step_dynamic.tflite", "dynamic", 1),
    ("step_int8.tflite", "int8", 1),
    ("step_b4_float32.tflite", "float32", 4),
    ("step_b4_int8.tflite", "int8", 4),
]
NORMALIZED = "step_normalized_float32.tflite"
KERAS = "keras_stock_step.tflite"
TAMPERED = "tampered"
"""Folder of step_float32.tflite variants whose metadata lies, re-sealed with a valid
checksum as an attacker would, plus damaged ones; see `tampered_models`."""
WINDOW = 7
CHUNK = "keras_window_chunk_float32.tflite"
SEQUENCE = "keras_window_sequence_float32.tflite"
STOCK_WHILE = ("keras3_stock_while.tflite", "tfkeras_stateful_stock_while.tflite")
POISONABLE = "step_poisonable_float32.tflite"
POISON_INPUT = [3e38, -3e38] * 4


def random_checkpoint(out: Path, seed: int = 0, spec: ModelSpec = SPEC, name: str = "checkpoint") -> Path:
    """The `spec` model with every variable uniform(-0.6, 0.6), saved as a checkpoint folder `name`."""
    import tensorflow as tf

    from tflstm.train import builder

    rng = np.random.default_rng(seed)
    model = builder.build(spec, spec.time_steps, None)
    with model.graph.as_default(), tf.compat.v1.Session(graph=model.graph) as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        for var in tf.compat.v1.global_variables():
            sess.run(var.assign(rng.uniform(-0.6, 0.6, var.shape).astype(np.float32)))
        checkpoint = out / name
        checkpoint.mkdir(parents=True, exist_ok=True)
        tf.compat.v1.train.Saver().save(sess, str(checkpoint / builder.CHECKPOINT_PREFIX))
    spec.save(checkpoint)
    return checkpoint


def poisonable_model(out: Path) -> None:
    """A float32 step model of 8 features, no normalization, whose state `POISON_INPUT` makes non-finite.

    The input is finite, but its products overflow the first layer's sums to +inf
    and -inf, whose sum is NaN: what StreamPool must contain.
    """
    from tflstm.convert.checkpoint import convert_checkpoint
    from tflstm.runtime import StreamingModel

    spec = ModelSpec(input_depth=8, layers=(LayerSpec(64),), head="regression", num_outputs=2, time_steps=4)
    checkpoint = random_checkpoint(out, seed=0, spec=spec, name="poisonable_checkpoint")
    (out / POISONABLE).write_bytes(convert_checkpoint(checkpoint, streaming=True))
    model = StreamingModel(out / POISONABLE)
    model.step(np.asarray(POISON_INPUT, np.float32))
    assert not all(np.isfinite(value).all() for value in model.state.values()), "the poison input did not poison"


def keras_stock_model(out: Path, x: np.ndarray, seed: int = 1) -> np.ndarray:
    """A tf-keras LSTM(8) -> Dense(2) converted by the stock converter at one step.

    Returns the Keras (TensorFlow) outputs at every step of x [n, T, D].
    """
    import tensorflow as tf
    
    import tf_keras

    tf_keras.utils.set_random_seed(seed)
    step_in = tf_keras.Input(shape=(1, DEPTH), batch_size=1)
    lstm, dense = tf_keras.layers.LSTM(8, return_sequences=True), tf_keras.layers.Dense(OUTPUTS)
    step_model = tf_keras.Model(step_in, dense(lstm(step_in)))
    seq_in = tf_keras.Input(shape=(x.shape[1], DEPTH))
    sequence_model = tf_keras.Model(seq_in, dense(lstm(seq_in)))
    (out / KERAS).write_bytes(tf.lite.TFLiteConverter.from_keras_model(step_model).convert())
    return sequence_model.predict(x, verbose=0)


def _edited(content: bytes, edit, *, reseal: bool = True) -> bytes:
    """`content` with its tflstm metadata dict changed by `edit(dict)`; re-sealed like tflstm seals."""
    from tflstm import flatbuf, integrity
    from tflstm.format import METADATA_NAME

    model = flatbuf.read_model(content)
    data = json.loads(flatbuf.ModelView(content).metadata(METADATA_NAME))
    edit(data)
    if reseal:
        data["checksum"] = integrity.CHECKSUM_PLACEHOLDER
    flatbuf.set_metadata(model, METADATA_NAME, json.dumps(data, indent=2, sort_keys=True).encode())
    written = flatbuf.write_model(model)
    return integrity.seal(written) if reseal else written


def tampered_models(content: bytes) -> dict[str, bytes]:
    """Variants of a float32 step model whose metadata lies or whose bytes are damaged.

    Each lie is re-sealed with a valid file checksum (what an attacker can do),
    so only the runtime's metadata-against-flatbuffer checks can catch it.
    """
    from tflstm import flatbuf
    from tflstm.format import METADATA_NAME

    view = flatbuf.ModelView(content)
    weight = next(i for i in range(view.num_tensors) if view.tensor_data(i))
    scratch = next(i for i in range(view.num_tensors)
                   if not view.tensor_data(i) and not view.is_variable(i) and i not in view.inputs and i not in view.outputs)

    def state_at(index):
        return lambda d: d["states"][0].update(tensor_index=index)

    def swap_h_and_c(d):
        d["states"][0]["tensor_index"], d["states"][1]["tensor_index"] = (
            d["states"][1]["tensor_index"], d["states"][0]["tensor_index"])

    edits = {
        "state_on_a_weight": state_at(weight),
        "state_on_a_scratch_tensor": state_at(scratch),
        "state_out_of_range": state_at(view.num_tensors + 7),
        "output_on_a_weight": lambda d: d["outputs"][0].update(tensor_index=weight),
        "input_dtype_lie": lambda d: d["inputs"][0].update(dtype="int8", scale=0.1, zero_point=0),
        "input_shape_lie": lambda d: d["inputs"][0].update(shape=[1, 1, 5]),
        "batch_lie": lambda d: d.update(batch_size=4),
        "h_and_c_swapped": swap_h_and_c,
        "fingerprint_lie": lambda d: d.update(fingerprint="0" * 64),
        "format_version_1": lambda d: d.update(format_version=1),
        "ill_typed_shape": lambda d: d["inputs"][0].update(shape="1x1x3"),
    }
    variants = {name: _edited(content, edit) for name, edit in edits.items()}
    variants["checksum_wrong"] = _edited(content, lambda d: d.update(checksum="f" * 64), reseal=False)
    model = flatbuf.read_model(content)
    model.metadata = [m for m in model.metadata if m.name not in (METADATA_NAME, METADATA_NAME.encode())]
    variants["metadata_removed"] = flatbuf.write_model(model)
    damaged = bytearray(content)
    damaged[len(damaged) // 2] ^= 0x40
    variants["one_bit_flipped"] = bytes(damaged)
    variants["truncated"] = content[: len(content) - 3496 % len(content)]
    return variants


def keras_window_models(out: Path, seed: int = 2) -> None:
    """A Keras 3 LSTM -> LSTM -> Flatten -> Dense window model as a chunk model (7 steps per call) and a
    sequence model, with Keras' outputs (keras_window.npz), and two stock-converted WHILE-loop models."""
    import keras
    import tensorflow as tf
    import tf_keras

    from tflstm.convert import from_keras

    keras.utils.set_random_seed(seed)

    def window_model(batch_shape: tuple[int | None, ...], stateful: bool) -> keras.Model:
        x = keras.Input(batch_shape=batch_shape)
        h = keras.layers.LSTM(12, return_sequences=True, stateful=stateful)(x)
        h = keras.layers.LSTM(6, return_sequences=True, stateful=stateful)(h)
        return keras.Model(x, keras.layers.Dense(OUTPUTS)(keras.layers.Flatten()(h)))

    model = window_model((None, WINDOW, DEPTH), stateful=False)
    (out / CHUNK).write_bytes(from_keras(model, steps_per_call=WINDOW))
    (out / SEQUENCE).write_bytes(from_keras(model, streaming=False))
    x = np.random.default_rng(seed).normal(size=(2, 3 * WINDOW, DEPTH)).astype(np.float32)
    windows = x.reshape(len(x), 3, WINDOW, DEPTH)
    stateful = window_model((len(x), WINDOW, DEPTH), stateful=True)
    stateful.set_weights(model.get_weights())
    np.savez(
        out / "keras_window.npz", x=x,
        stateful_y=np.stack([stateful.predict_on_batch(windows[:, k]) for k in range(3)], axis=1),
        fresh_y=np.stack([model.predict_on_batch(windows[:, k]) for k in range(3)], axis=1),
    )
    keras3 = keras.Sequential([keras.Input(batch_shape=(1, WINDOW, DEPTH)), keras.layers.LSTM(4)])
    stateful_tf_keras = tf_keras.Sequential(
        [tf_keras.Input(batch_shape=(1, 1, DEPTH)), tf_keras.layers.LSTM(4, stateful=True)]
    )
    for name, stock in zip(STOCK_WHILE, (keras3, stateful_tf_keras)):
        with contextlib.redirect_stdout(io.StringIO()):  # the converter prints the SavedModel it exports
            (out / name).write_bytes(tf.lite.TFLiteConverter.from_keras_model(stock).convert())


def main(out_dir: str) -> None:
    from tflstm.convert.checkpoint import convert_checkpoint
    from tflstm.train import builder

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(STREAMS, STEPS, DEPTH)).astype(np.float32)
    calibration = rng.normal(size=(100, STEPS, DEPTH)).astype(np.float32)
    checkpoint = random_checkpoint(out)
    for name, quantize, batch in MODELS:
        model = convert_checkpoint(
            checkpoint, quantize=quantize, streaming=True, batch_size=batch,
            calibration=calibration if quantize == "int8" else None,
        )
        (out / name).write_bytes(model)
    (out / TAMPERED).mkdir(exist_ok=True)
    for name, content in tampered_models((out / "step_float32.tflite").read_bytes()).items():
        (out / TAMPERED / f"{name}.tflite").write_bytes(content)
    mean, std = np.array([0.5, -1.0, 2.0]), np.array([2.0, 0.5, 4.0])
    restored, sess = builder.restore(checkpoint, 1, 1)
    with sess:
        from tflstm.convert import from_session

        (out / NORMALIZED).write_bytes(from_session(
            sess, [restored.features], [restored.predictions], streaming=True,
            normalization=(mean, std),
        ))
    np.savez(
        out / "reference.npz",
        x=x,
        y=builder.predict(checkpoint, x),
        raw_x=x * std + mean,  # what the normalized model is fed: it gives y again
        keras_y=keras_stock_model(out, x),
    )
    keras_window_models(out)
    poisonable_model(out)


if __name__ == "__main__":
    with quiet_tensorflow():  # the converter's diagnostics; errors still reach stderr afterwards
        main(sys.argv[1])
