"""The sensor demo in short form: BasicMotions trained briefly, converted to every
quantization, streamed sample by sample as a device would, reported and plotted."""

from __future__ import annotations

import numpy as np

from tflstm.demos import motions as motions_demo_module
from tflstm.demos.recognition import Streamed, recognized_after, table
from tflstm.format import QUANTIZATIONS, TOLERANCES, read_metadata
from tflstm.normalization import from_data
from tflstm.train import builder, motions


def test_every_quantization_is_converted_streamed_and_timed(motions_demo):
    folder, reports, streamed = motions_demo
    assert {(r.kind, r.quantization) for r in reports} == {(k, q) for k in ("sequence", "step") for q in QUANTIZATIONS}
    assert set(streamed) == set(QUANTIZATIONS)
    _, test = motions.load()
    for quantize, result in streamed.items():
        assert result.outputs.shape == (40, 100, 4)
        np.testing.assert_allclose(result.outputs.sum(-1), 1.0, atol=1e-2, err_msg=quantize)
        assert result.step_us.shape == (4000,) and np.all(result.step_us > 0)


def test_streaming_raw_samples_gives_tensorflow_answers(motions_demo):
    """The models carry the training statistics, so raw sensor rows stream to TensorFlow's outputs."""
    folder, _, streamed = motions_demo
    train, test = motions.load()
    expected = from_data(train.x)
    for path in (folder / "models").glob("*.tflite"):
        assert read_metadata(path.read_bytes()).normalization == expected, path.name
    reference = builder.predict(folder / "checkpoint", test.x)
    np.testing.assert_allclose(streamed["float32"].outputs, reference, atol=TOLERANCES["float32"], rtol=0)
    assert np.mean(reference[:, -1].argmax(-1) == test.y) > 0.5  # 4 activities: chance is 0.25


def test_plot_is_a_png(motions_demo):
    folder, *_ = motions_demo
    content = (folder / motions_demo_module.PLOT_FILE).read_bytes()
    assert content.startswith(b"\x89PNG\r\n\x1a\n") and len(content) > 20_000


def test_recognized_after_counts_samples_until_the_answer_stays_right():
    def outputs(*answers: int) -> np.ndarray:
        return np.eye(3)[list(answers)]

    assert recognized_after(outputs(0, 0, 0), label=0) == 1
    assert recognized_after(outputs(1, 2, 0, 0), label=0) == 3
    assert recognized_after(outputs(0, 1, 0, 0), label=0) == 3
    assert recognized_after(outputs(0, 0, 1), label=0) is None


def test_recognition_table_gives_median_samples_seconds_and_misses():
    eye = np.eye(2, dtype=np.float32)
    recordings = np.stack([
        eye[[1, 0, 0, 0]],  # class 0, recognized after 2 samples
        eye[[1, 1, 1, 0]],  # class 0, after 4
        eye[[1, 1, 1, 1]],  # class 1, after 1
        eye[[1, 1, 1, 0]],  # class 1, never (wrong at the end)
    ])
    streamed = {"float32": Streamed(recordings, np.array([10.0, 10.0, 30.0, 1000.0]))}
    lines = table(streamed, np.array([0, 0, 1, 1]), ("sit", "run"), sample_rate_hz=10).splitlines()
    assert lines[0] == "| model | accuracy | step median µs | step p99 µs | sit: recognized after | run: recognized after |"
    assert lines[2].startswith("| float32 | 0.7500 | 20.0 | ")
    assert lines[2].endswith(" | 3 samples (0.30 s) | 1 samples (0.10 s), 1 of 2 never |")
