"""The documented example job runs with one command and classifies every image once."""

from __future__ import annotations

import subprocess
import sys

import pytest

from jobs import ROOT


@pytest.mark.slow
def test_digits_example_classifies_every_image_once(tmp_path):
    command = [sys.executable, str(ROOT / "examples" / "flink_digits_job.py"), "--out", str(tmp_path),
               "--sensors", "30", "--images", "3", "--mode", "process", "--state-backend", "rocksdb"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "90 images classified (90 distinct, 90 expected), 90 correct" in done.stdout
    assert len(list((tmp_path / "lines").glob("part-*"))) >= 1
