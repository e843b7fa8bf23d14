"""Short forms of the reliability runs (`make fuzz` and `make soak` run the long ones), on this venv's backend."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT

RELIABILITY = ROOT / "tests" / "reliability"
ASSETS = sorted(str(p) for p in (ROOT / "android_assets").glob("*.tflite"))


def run(script: str, *args: str, timeout: int = 600) -> dict:
    done = subprocess.run([sys.executable, str(RELIABILITY / script), *args], capture_output=True, text=True,
                          timeout=timeout)
    assert done.stdout.strip(), done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 0, report
    return report


def test_fuzzed_models_never_crash_or_change_silently(fixtures, backend):
    report = run("fuzz_models.py", "--cases", "360", "--seed", "11", "--backend", backend,
                 *ASSETS, str(fixtures / "keras_stock_step.tflite"))
    counts = report["counts"]
    assert sum(counts.values()) == 360
    assert not [key for key in counts if key.endswith((":signal", ":hang", ":foreign")) or key == "damaged:changed"]
    assert counts["damaged:refused"] >= 150


def test_sigkill_while_saving_loses_nothing():
    report = run("kill_saves.py", "--kills", "30", "--seed", "2", ASSETS[0])
    assert report["kills"] == 30
    assert report["unreadable"] == report["wrong_state"] == report["temporaries_left"] == report["mode_changed"] == 0


def test_soak_keeps_memory_and_results():
    report = run("soak.py", "--steps", "20000", ASSETS[0])
    assert report["mismatches"] == 0
    assert report["rss_growth_kib"] < 5 * 1024


def test_sigkill_while_a_pool_steps_loses_only_unflushed_steps():
    report = run("kill_pool.py", "--kills", "12", "--seed", "3", str(ROOT / "android_assets" / "digits_step_float32.tflite"))
    assert report["kills"] == 12 and report["keys_checked"] == 12 * 200
    assert report["finished"] < report["kills"]  # some kills landed while the pool was stepping
    assert report["corrupt"] == report["unreadable"] == report["lost"] == report["wrong"] == report["earlier_changed"] == 0
