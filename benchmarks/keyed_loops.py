"""Plain loops over many keys' packed states: what a keyed stream processor could reach on one core.

`run_step loop` carries one key's state as arrays through
`StreamingModel.run_step`; `packed` keeps every key's state packed in a dict
and steps it with `run_step_packed`, the way the keyed operator
`tflstm.flink.LSTMStepFunction` does with Flink's keyed state; `batch N`
steps N keys per invoke of a model converted with batch N (unpack N states,
one `run_step`, pack N states): what an operator that batched keys would do.
Loops are timed in alternating blocks against a baseline (`benchmarks.timing`).
Runtime only: runs in any tflstm venv.

Example (models converted with batch 1, 8 and 64, see `make demo` and
`converters.tflstm_convert --step_batch_sizes=1,8,64`):

    python -m benchmarks.keyed_loops build/flink-bench/models/step_float32.tflite \\
        build/flink-bench/models/step_b8_float32.tflite build/flink-bench/models/step_b64_float32.tflite
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from benchmarks.timing import measure_alternating
from tflstm.runtime import StreamingModel
from tflstm.runtime.state import PackedLayout

ROWS = 97
"""Distinct input rows; record n takes row n % ROWS."""


def input_rows(model: StreamingModel) -> np.ndarray:
    """float32 [ROWS, depth] inputs in [0, 1), the same for every run."""
    return np.random.default_rng(0).random((ROWS, model.input_depth), dtype=np.float32)


def keyed_stepper(model: StreamingModel, keys: int) -> Callable[[int], None]:
    """Call i steps `batch_size` keys (round-robin over `keys`) from their packed states, and packs them back."""
    batch, rows = model.batch_size, input_rows(model)
    one_key = PackedLayout(model.metadata.states)
    store = dict.fromkeys(range(keys), one_key.pack({name: value[:1] for name, value in model.zero_state().items()}))

    def step_one(i: int) -> None:  # what LSTMStepFunction does per record
        key = i % keys
        _, store[key] = model.run_step_packed(rows[i % ROWS], store[key])

    def step_batch(i: int) -> None:
        chosen = [(i * batch + row) % keys for row in range(batch)]
        states = [one_key.unpack(store[key]) for key in chosen]
        stacked = {spec.name: np.concatenate([state[spec.name] for state in states]) for spec in one_key.specs}
        x = rows[[(i * batch + row) % ROWS for row in range(batch)]]
        _, new_state = model.run_step(x, stacked)
        for row, key in enumerate(chosen):
            store[key] = one_key.pack({name: value[row : row + 1] for name, value in new_state.items()})

    return step_one if batch == 1 else step_batch


def carried_stepper(model: StreamingModel) -> Callable[[int], None]:
    """Call i steps one key from its state as arrays: no codec."""
    rows, carried = input_rows(model), [model.zero_state()]

    def step(i: int) -> None:
        _, carried[0] = model.run_step(rows[i % ROWS], carried[0])

    return step


def loop_rates(model_path: Path, keys: int, steps: int) -> dict[str, float]:
    """records/s of the `run_step` loop (one key, state carried) and of `keys` packed keys, timed alternately."""
    model = StreamingModel(model_path)
    packed, carried = measure_alternating(keyed_stepper(model, keys), carried_stepper(model), steps, steps // 10)
    return {"run_step loop": carried.steps_per_second, f"packed, {keys:,} keys": packed.steps_per_second}


def batched_rates(model_paths: Sequence[Path], keys: int, steps: int) -> dict[str, float]:
    """records/s of each model's keyed loop (batch N keys per invoke), timed alternately with the first model's.

    Raises:
        ValueError: the first model is not a batch-1 model.
    """
    first = StreamingModel(model_paths[0])
    if first.batch_size != 1:
        raise ValueError(f"The first model must have batch 1 (the baseline), got batch {first.batch_size}.")
    baseline = keyed_stepper(first, keys)
    rates = {}
    for path in model_paths[1:]:
        model = StreamingModel(path)
        ours, theirs = measure_alternating(keyed_stepper(model, keys), baseline, max(steps // model.batch_size, 20), 5)
        rates.setdefault("packed, batch 1", theirs.steps_per_second)
        rates[f"packed, batch {model.batch_size}"] = model.batch_size * ours.steps_per_second
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, nargs="+", help="a batch-1 step model, then batched ones")
    parser.add_argument("--keys", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=40_000)
    args = parser.parse_args()
    rates = {**loop_rates(args.models[0], args.keys, args.steps), **batched_rates(args.models, args.keys, args.steps)}
    plain = rates["run_step loop"]
    print("| loop | records/s | vs run_step loop |\n|---|---:|---:|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:,.0f} | {rate / plain:.2f}x |")


if __name__ == "__main__":
    main()
