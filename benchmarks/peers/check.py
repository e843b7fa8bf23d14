"""Checks every peer against `numpy_step` and times it roughly.

Run from the repository root::

    python -m benchmarks.peers.check [--steps 2000] [--models S M] [--peers NAME ...]

Two seeded random models: S = 3 -> LSTM 32 -> LSTM 16 -> Dense 1 sigmoid and
M = 40 -> LSTM 128 -> LSTM 128 -> Dense 10 softmax. Each peer streams 20 random
steps twice (with `reset()` between, which checks reset too) and every output is
compared with `numpy_step`: the max abs error must be below 1e-5. A sliding
window of W is compared at step W of a W-step stream (the only step where it
computes the stream's function); its other steps legitimately differ and are
reported, not checked. The TFLite peers' op lists are checked too: the
state-I/O model must be a WHILE loop, the window model fused.

Timing: median µs per `step()` over `--steps` steps after `--warmup` steps,
one thread (TensorFlow, TFLite, ONNX Runtime and, with threadpoolctl, BLAS).
Optionally (skipped with a note if it fails) tflstm's own fused step model,
built with `tflstm.train.builder` and `tflstm.convert.from_session(streaming=True)`
from the same weights, is checked and timed as a reference row.

Exit status 1 if any check failed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import statistics
import sys
import time
from collections.abc import Iterator

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before anything imports TensorFlow

import numpy as np  # noqa: E402

from benchmarks.peers import PEERS, StepMethod, make  # noqa: E402
from benchmarks.peers.numpy_step import NumpyStep  # noqa: E402
from benchmarks.peers.weights import GATES, Weights, dims, random_weights  # noqa: E402

TOLERANCE = 1e-5
CHECK_STEPS = 20
MODELS = {
    "S": {"depth": 3, "units": (32, 16), "outputs": 1, "activation": "sigmoid"},
    "M": {"depth": 40, "units": (128, 128), "outputs": 10, "activation": "softmax"},
}
EXPECTED_OPS = {
    # peer name prefix -> (op that must be there, op that must not)
    "tfkeras_unfused_state_io": ("WHILE", "UNIDIRECTIONAL_SEQUENCE_LSTM"),
    "sliding_window": ("UNIDIRECTIONAL_SEQUENCE_LSTM", "WHILE"),
}
TFLSTM_ROW = "tflstm_fused_step_carried (reference)"


@dataclasses.dataclass
class Result:
    """One peer on one model."""

    error: float | None = None
    micros: float | None = None
    ok: bool = True
    notes: list[str] = dataclasses.field(default_factory=list)


def run(method: StepMethod, xs: np.ndarray) -> np.ndarray:
    """Resets and streams `xs` [steps, depth]; returns the outputs [steps, outputs]."""
    method.reset()
    return np.stack([method.step(x) for x in xs])


def check_outputs(method: StepMethod, xs: np.ndarray, expected: np.ndarray, result: Result) -> None:
    """Fills `result.error` / `ok` / `notes` by comparing `method` with the expected stream."""
    window = getattr(method, "matches_stream_after", None)
    if window is None:
        errors = [np.abs(run(method, xs[:CHECK_STEPS]) - expected[:CHECK_STEPS]).max() for _ in range(2)]
        result.error = float(max(errors))
    else:
        last = [np.abs(run(method, xs[:window])[-1] - expected[window - 1]).max() for _ in range(2)]
        result.error = float(max(last))
        other = np.abs(run(method, xs[:CHECK_STEPS]) - expected[:CHECK_STEPS]).max(axis=1)
        note = (
            f"error at step {window} of a {window}-step stream; unchecked: "
            f"steps < {window} differ by up to {other[: window - 1].max():.1e}"
        )
        if window < CHECK_STEPS:
            note += f", steps {window + 1}-{CHECK_STEPS} (truncated history) by up to {other[window:].max():.1e}"
        result.notes.append(note)
    if not result.error < TOLERANCE:
        result.ok = False
        result.notes.append(f"FAIL: error {result.error:.1e} >= {TOLERANCE:.0e}")


def check_ops(method: StepMethod, result: Result) -> None:
    """Checks (and notes) the op list of the TFLite peers."""
    ops = getattr(method, "ops", None)
    if ops is None:
        return
    result.notes.append("ops: " + " ".join(ops))
    for prefix, (wanted, unwanted) in EXPECTED_OPS.items():
        if method.name.startswith(prefix) and (wanted not in ops or unwanted in ops):
            result.ok = False
            result.notes.append(f"FAIL: expected {wanted} and no {unwanted}")


def equations_stream(weights: Weights, xs: np.ndarray) -> np.ndarray:
    """The step equations written out plainly in float64: an independent check of `numpy_step`."""

    def sigma(v: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-v))

    w64 = [{key: np.asarray(value, np.float64) for key, value in layer.items()} for layer in weights["layers"]]
    state = [(np.zeros(n), np.zeros(n)) for n in dims(weights).units]
    outputs = []
    for x in xs:
        inputs = np.asarray(x, np.float64)
        for k, layer in enumerate(w64):
            h, c = state[k]
            pre = {
                gate: layer[f"input_to_{gate}_w"] @ inputs + layer[f"recurrent_to_{gate}_w"] @ h + layer[f"{gate}_bias"]
                for gate in GATES
            }
            c = sigma(pre["forget"]) * c + sigma(pre["input"]) * np.tanh(pre["cell"])
            h = sigma(pre["output"]) * np.tanh(c)
            state[k] = (h, c)
            inputs = h
        logits = inputs @ np.asarray(weights["head"]["kernel"], np.float64) + weights["head"]["bias"]
        if weights["activation"] == "sigmoid":
            logits = sigma(logits)
        elif weights["activation"] == "softmax":
            logits = np.exp(logits - logits.max())
            logits /= logits.sum()
        outputs.append(logits)
    return np.stack(outputs)


def time_method(method: StepMethod, xs: np.ndarray, warmup: int) -> float:
    """Median µs per step over `xs[warmup:]`, after stepping `xs[:warmup]`."""
    method.reset()
    for x in xs[:warmup]:
        method.step(x)
    clock = time.perf_counter_ns
    samples = []
    for x in xs[warmup:]:
        start = clock()
        method.step(x)
        samples.append(clock() - start)
    return statistics.median(samples) / 1e3


class TflstmStep:
    """tflstm's fused step model (`step` signature), state written before and read after each invoke.

    Check-only reference: it needs TensorFlow and tflstm's converter, and the
    head is softmax ("classification") or linear ("regression") only.
    """

    name = TFLSTM_ROW

    def __init__(self, weights: Weights, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        model = _tflstm_model(weights)
        self.interpreter = Interpreter(model_content=model, num_threads=threads)
        self.interpreter.allocate_tensors()
        runner = self.interpreter.get_signature_runner("step")
        inputs = {key: d["index"] for key, d in runner.get_input_details().items()}
        outputs = {key: d["index"] for key, d in runner.get_output_details().items()}
        del runner
        self._x = inputs.pop("features")
        self._x_shape = tuple(self.interpreter.get_tensor(self._x).shape)
        self._y = outputs["predictions"]
        self._states = {
            index: np.zeros(self.interpreter.get_tensor(index).shape, np.float32) for index in inputs.values()
        }

    def reset(self) -> None:
        self._states = {index: np.zeros_like(value) for index, value in self._states.items()}

    def step(self, x: np.ndarray) -> np.ndarray:
        interpreter = self.interpreter
        interpreter.set_tensor(self._x, x.reshape(self._x_shape))
        for index, value in self._states.items():
            interpreter.set_tensor(index, value)
        interpreter.invoke()
        self._states = {index: interpreter.get_tensor(index) for index in self._states}
        return interpreter.get_tensor(self._y).reshape(-1)


def _tflstm_model(weights: Weights) -> bytes:
    """Builds a one-step tflstm graph, loads `weights` into it and converts it (streaming)."""
    import tensorflow as tf

    from tflstm.convert import from_session
    from tflstm.train import builder

    d = dims(weights)
    heads = {"softmax": "classification", "linear": "regression"}
    spec = builder.ModelSpec(
        input_depth=d.depth,
        layers=tuple(builder.LayerSpec(num_units=units) for units in d.units),
        head=heads[weights["activation"]],
        num_outputs=d.outputs,
        time_steps=1,
    )
    model = builder.build(spec, 1, 1)
    values = {f"rnn/lstm_{k}/{key}": value for k, layer in enumerate(weights["layers"]) for key, value in layer.items()}
    values.update({f"head/{key}": value for key, value in weights["head"].items()})
    with model.graph.as_default(), tf.compat.v1.Session(graph=model.graph) as sess:
        variables = tf.compat.v1.global_variables()
        if sorted(v.op.name for v in variables) != sorted(values):
            raise KeyError(f"tflstm variables {sorted(v.op.name for v in variables)} != {sorted(values)}")
        sess.run([v.assign(np.asarray(values[v.op.name], np.float32)) for v in variables])
        return from_session(sess, [model.features], [model.predictions], streaming=True)


@contextlib.contextmanager
def blas_threads(threads: int) -> Iterator[str]:
    """Limits BLAS threads with threadpoolctl if installed; yields a note."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield "threadpoolctl not installed: BLAS threads not limited"
        return
    with threadpool_limits(threads):
        yield f"BLAS limited to {threads} thread(s)"


def check_model(label: str, weights: Weights, names: list[str], args: argparse.Namespace) -> dict[str, Result]:
    """Checks and times `names` (plus the tflstm reference) on one model."""
    d = dims(weights)
    rng = np.random.default_rng(1)
    longest = max([CHECK_STEPS, *(PEERS[n].options.get("window", 0) for n in names)])
    xs = rng.standard_normal((longest, d.depth)).astype(np.float32)
    timing_xs = rng.standard_normal((args.warmup + args.steps, d.depth)).astype(np.float32)
    reference = NumpyStep(weights)
    expected = run(reference, xs)
    results: dict[str, Result] = {}

    def measure(method: StepMethod, expected: np.ndarray) -> Result:
        result = Result()
        check_outputs(method, xs, expected, result)
        check_ops(method, result)
        result.micros = time_method(method, timing_xs, args.warmup)
        return result

    for name in names:
        print(f"[{label}] {name} ...", file=sys.stderr, flush=True)
        try:
            method = make(name, weights, threads=args.threads)
        except ImportError as error:
            results[name] = Result(notes=[f"skipped: {error}"])
            continue
        if method.name != name:
            raise AssertionError(f"{name} built a method named {method.name!r}")
        results[name] = measure(method, expected)
        if name == "numpy_step":
            error = float(np.abs(expected - equations_stream(weights, xs)).max())
            results[name].notes.append(f"vs the float64 equations: {error:.1e}")
            if not error < TOLERANCE:
                results[name].ok = False

    if not args.skip_tflstm:
        print(f"[{label}] {TFLSTM_ROW} ...", file=sys.stderr, flush=True)
        # tflstm heads are softmax or linear: compare a linear-head copy of a sigmoid model.
        tflstm_weights = weights if weights["activation"] != "sigmoid" else {**weights, "activation": "linear"}
        try:
            method = TflstmStep(tflstm_weights, args.threads)
        except Exception as error:  # optional reference: report, do not fail
            results[TFLSTM_ROW] = Result(notes=[f"skipped: {type(error).__name__}: {error}"])
        else:
            result = measure(method, run(NumpyStep(tflstm_weights), xs))
            result.notes.append(f"head {tflstm_weights['activation']}")
            results[TFLSTM_ROW] = result
    return results


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def print_table(models: dict[str, dict[str, Result]]) -> None:
    """Prints a markdown table: one row per peer, error and µs per model."""
    labels = list(models)
    rows = list(dict.fromkeys(name for results in models.values() for name in results))
    header = ["method"] + [f"{label} {col}" for label in labels for col in ("max err", "µs/step")] + ["ok"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name in rows:
        cells = [name]
        ok = True
        for label in labels:
            result = models[label].get(name, Result())
            cells += [_cell(result.error, ".1e"), _cell(result.micros, ".1f")]
            ok &= result.ok
        print("| " + " | ".join(cells + ["yes" if ok else "NO"]) + " |")
    print()
    for label in labels:
        for name, result in models[label].items():
            for note in result.notes:
                print(f"- {label} {name}: {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="timed steps per method")
    parser.add_argument("--warmup", type=int, default=200, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--peers", nargs="+", choices=list(PEERS), default=list(PEERS))
    parser.add_argument("--skip-tflstm", action="store_true", help="skip the tflstm reference row")
    args = parser.parse_args(argv)

    with blas_threads(args.threads) as blas_note:
        models = {
            label: check_model(label, random_weights(**MODELS[label], seed=k), args.peers, args)
            for k, label in enumerate(args.models)
        }
    print(f"threads={args.threads}; {blas_note}; tolerance {TOLERANCE:.0e}; "
          f"median of {args.steps} steps after {args.warmup} warm-up steps\n")
    print_table(models)
    return 0 if all(r.ok for results in models.values() for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
