"""The benchmark runner's quick suite runs, and every method matches TensorFlow."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = {
    "bare_invoke", "tflstm_step", "tflstm_step_unchecked", "tflstm_streams_64", "tflstm_step_many_64", "tflstm_chunk_8",
    "numpy_step",
    "tfkeras_unfused_state_io", "sliding_window_7", "sliding_window_32",
    "keras3_stateful_predict_on_batch", "keras3_stateful_call", "tfkeras_stateful_predict_on_batch",
    "tfkeras_stateful_call", "onnxruntime_lstm",
}


def quick_run(module: str, tmp_path: Path) -> dict:
    """Runs a benchmark module's quick suite into `tmp_path`; its results.json."""
    done = subprocess.run(
        [sys.executable, "-m", module, "--suite=quick", f"--out={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((tmp_path / "results.json").read_text())


def test_quick_suite_produces_every_method_within_tolerance(tmp_path):
    results = quick_run("benchmarks.run", tmp_path)
    rows = results["rows"]
    assert {r["method"] for r in rows} == EXPECTED
    for row in rows:
        assert row["median_us"] and row["median_us"] > 0, row
        assert row["max_abs_error"] is not None, row
        if row["tolerance"] is not None:
            assert row["max_abs_error"] <= row["tolerance"], row
    assert {r["quantization"] for r in rows if r["method"] == "tflstm_step"} == {"float32", "dynamic", "int8"}
    assert (tmp_path / "results.md").read_text().count("| S |") == len(rows)
    assert list(tmp_path.glob("latency_S_t1.png"))
    one_model = subprocess.run(  # the per-process runner, on the suite's S model and the digits asset
        [sys.executable, "-m", "benchmarks.one_model", f"--models_dir={tmp_path / 'models'}", "--sizes=S",
         "--processes=1", "--steps=200"], cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert one_model.returncode == 0, one_model.stderr[-3000:]
    table = one_model.stdout.splitlines()
    assert [line.split(" | ")[0] for line in table[2:]] == ["| S", "| digits (pixels / 16 in the metadata)"]
    for line in table[2:]:
        cells = line.strip("| ").split(" | ")[1:]  # a ratio range per variant, e.g. 1.02-1.05x
        assert len(cells) == 4 and all(re.fullmatch(r"\d+\.\d\d-\d+\.\d\dx", cell) for cell in cells), line


def test_pool_benchmark_quick_form_runs_and_checks_itself(tmp_path):
    results = quick_run("benchmarks.pool_bench", tmp_path)
    churn = results["churn"]
    assert churn["wrong_keys"] == 0 and churn["checked_keys"] == 50 and churn["store_ratio"] < 2
    assert churn["steps"] == 2 * churn["keys"] and churn["rss_growth_after_budget_mib"] < 50
    assert results["resident"]["pool_vs_run_step_rate"] > 0
    assert [row["threads"] for row in results["threads"]] == [1, 2, 8]
    assert results["idle"]["resident_swap_bytes"] > 0 and results["idle"]["stored_bytes"] > 1536
    assert [s["rate_per_client"] for s in results["server"]] == [None, 10.0, 40.0]  # closed loop, then each --rate
    assert [s["non_200"] + s["keys_mismatched"] for s in results["server"]] == [0, 0, 0]
    assert "| closed loop |" in (tmp_path / "results.md").read_text()
