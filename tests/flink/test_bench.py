"""The Flink benchmark's quick run works end to end (a smoke test: its figures are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from jobs import ROOT


@pytest.mark.slow
def test_flink_benchmark_quick_run(tmp_path):
    command = [sys.executable, "-m", "benchmarks.flink_bench", "--quick", "--out", str(tmp_path),
               "--configs", "thread-p1-hashmap-1000", "thread-p1-rocksdb-20000"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["plain"]) == {"run_step loop", "packed, 1,000 keys"}
    configs = [row["config"] for row in results["flink"]]
    assert configs == ["thread p1 hashmap 1,000 keys", "thread p1 rocksdb 20,000 keys"]
    for row in results["flink"]:  # quick runs end before their checkpoints say much: bytes not checked
        assert row["records_per_s_with_start_up"] > 0 and "checkpoint_bytes_per_key" in row, row
    assert (tmp_path / "results.md").read_text().count("| Flink ") == 2
