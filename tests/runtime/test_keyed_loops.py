"""The keyed-loop benchmark (the plain-loop baseline of the Flink figures) runs on every runtime backend."""

from __future__ import annotations

import pytest

from benchmarks.keyed_loops import batched_rates, loop_rates


def test_keyed_loops_report_every_loop(fixtures):
    models = [fixtures / "step_float32.tflite", fixtures / "step_b4_float32.tflite"]
    rates = {**loop_rates(models[0], keys=16, steps=200), **batched_rates(models, keys=16, steps=200)}
    assert set(rates) == {"run_step loop", "packed, 16 keys", "packed, batch 1", "packed, batch 4"}
    assert all(rate > 0 for rate in rates.values()), rates


def test_batched_loops_need_a_batch_1_baseline_first(fixtures):
    with pytest.raises(ValueError, match="The first model must have batch 1 \\(the baseline\\), got batch 4"):
        batched_rates([fixtures / "step_b4_float32.tflite"], keys=4, steps=20)
