"""Training data files (.npz, .csv), the .ts reader and BasicMotions: layouts and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from tflstm.normalization import apply, from_data
from tflstm.train import data, motions, ts_file
from tflstm.train.spec import LayerSpec, ModelSpec

TS = """# a comment
@problemName Tiny
@timeStamps false
@missing false
@univariate false
@dimensions 2
@equalLength true
@seriesLength 3
@classLabel true sit run
@data
1,2,3:4,5,6:run
7,8,9:10,11,12:sit
"""


def spec(**changes) -> ModelSpec:
    fields = dict(input_depth=2, layers=(LayerSpec(4),), head="classification", num_outputs=2, time_steps=3)
    return ModelSpec(**{**fields, **changes})


def test_ts_file_cases_are_time_major_per_case_with_class_indices():
    parsed = ts_file.parse(TS)
    assert parsed.classes == ("sit", "run") and parsed.problem == "Tiny"
    np.testing.assert_array_equal(parsed.x[0], [[1, 4], [2, 5], [3, 6]])
    np.testing.assert_array_equal(parsed.y, [1, 0])


@pytest.mark.parametrize("edit, message", [
    (("@timeStamps false", "@timeStamps true"), "line 3: series with time stamps are not supported"),
    (("1,2,3:4,5,6:run", "1,2,3:4,5:run"), "line 11: expected 2 dimension(s) of equal length, got 2 of lengths [2, 3]"),
    (("1,2,3:4,5,6:run", "1,2,?:4,5,6:run"), "line 11: values must be numbers"),
    (("7,8,9:10,11,12:sit", "7,8,9:10,11,12:jump"), "line 12: class label 'jump' is not one of ['sit', 'run']"),
    (("@classLabel true sit run", "@classLabel false"), "line 9: expected `@classLabel true <labels...>`"),
])
def test_ts_file_refuses_what_it_does_not_read_with_the_line(edit, message):
    with pytest.raises(data.DataError, match=None) as raised:
        ts_file.parse(TS.replace(*edit), "tiny.ts")
    assert str(raised.value).startswith("tiny.ts, ") and message in str(raised.value)


def test_basic_motions_from_the_aeon_wheel():
    train, test = motions.load()
    assert train.x.shape == test.x.shape == (40, 100, 6)
    assert motions.classes() == ("Standing", "Running", "Walking", "Badminton")
    assert np.bincount(train.y).tolist() == np.bincount(test.y).tolist() == [10, 10, 10, 10]


def test_npz_and_csv_layouts_read_the_same_data(tmp_path):
    x = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    np.savez(tmp_path / "d.npz", x=x, y=np.array([1, 0]))
    lines = ["sequence,label,a,b"] + [f"s{n},{1 - n},{row[0]:g},{row[1]:g}" for n in range(2) for row in x[n]]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    for name in ("d.npz", "d.csv"):
        loaded = data.load(tmp_path / name)
        np.testing.assert_array_equal(loaded.x, x)
        np.testing.assert_array_equal(loaded.y, [1, 0])
        assert loaded.y.dtype == np.int64


@pytest.mark.parametrize("name, content, message", [
    ("a.txt", "", "a.txt: expected a .npz or .csv file"),
    ("a.csv", "sequence,label,f\ns,0,1\ns,1,2\n", "a.csv, line 3: sequence 's' changes its label from 0 to 1"),
    ("a.csv", "sequence,label,f\ns,0,1\nt,0,1\ns,0,2\n", "a.csv, line 4: sequence 's' continues after other"),
    ("a.csv", "sequence,label,f\ns,0,x\n", "a.csv, line 2: label and features must be numbers"),
    ("a.csv", "sequence,label,f\n", "a.csv: expected a header"),
])
def test_bad_files_are_one_line_errors(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(data.DataError) as raised:
        data.load(tmp_path / name)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_npz_without_x_or_y_says_what_it_holds(tmp_path):
    np.savez(tmp_path / "a.npz", features=np.zeros((2, 3, 2)))
    with pytest.raises(data.DataError, match=r"no `x` array .* the file holds \['features'\]"):
        data.load(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", x=np.zeros((2, 3, 2)))
    with pytest.raises(data.DataError, match="no `y` array"):
        data.load(tmp_path / "b.npz")
    assert data.load(tmp_path / "b.npz", labels_required=False).y is None


def test_targets_fit_the_head():
    assert data.targets(np.array([0.0, 1.0]), spec(), "f").dtype == np.int64
    with pytest.raises(data.DataError, match="labels must be integers 0..1"):
        data.targets(np.array([0, 2]), spec(), "f")
    assert data.targets(np.array([0.5, 2.0]), spec(head="regression", num_outputs=1), "f").shape == (2, 1)
    with pytest.raises(data.DataError, match="binary targets must be 0 or 1"):
        data.targets(np.array([0.5, 1.0]), spec(head="binary", num_outputs=1), "f")
    assert data.num_outputs(np.array([0, 3, 1]), "classification") == 4
    assert data.num_outputs(np.zeros((5, 2)), "regression") == 2


def test_split_holds_out_a_fraction_and_keeps_pairs():
    x = np.arange(10, dtype=np.float32).reshape(10, 1, 1)
    train, held = data.split(data.Split(x, np.arange(10)), 0.2, seed=0)
    assert len(held.x) == 2 and len(train.x) == 8
    np.testing.assert_array_equal(np.concatenate([train.x, held.x]).ravel()[np.argsort(np.r_[train.y, held.y])], x.ravel())
    np.testing.assert_array_equal(held.x.ravel(), held.y)


def test_verification_data_comes_from_the_checkpoint_or_says_what_to_pass(tmp_path):
    model = spec(normalization={"mean": [0, 0], "std": [1, 1]})
    with pytest.raises(data.DataError, match="pass held-out windows with --data"):
        data.verification_data(tmp_path, None, model)
    x = np.ones((4, 3, 2), np.float32)
    data.save_held_out(tmp_path, data.Split(x, np.array([0, 1, 0, 1])), x * 2)
    held, calibration = data.verification_data(tmp_path, None, model)
    np.testing.assert_array_equal(held.x, x)
    np.testing.assert_array_equal(calibration, x * 2)
    np.savez(tmp_path / "wrong.npz", x=np.ones((4, 3, 5)))
    with pytest.raises(data.DataError, match=r"sequences of 3 time steps of 2 features, \[n, 3, 2\]; got \[4, 3, 5\]"):
        data.verification_data(tmp_path, tmp_path / "wrong.npz", model)


def test_normalization_from_data_standardizes_each_feature():
    rng = np.random.default_rng(0)
    x = rng.normal([5.0, -3.0, 0.0], [2.0, 0.5, 0.0], size=(50, 7, 3))
    norm = from_data(x)
    assert norm["std"][2] == 1.0  # a constant feature is left unscaled
    scaled = apply(x, norm)
    np.testing.assert_allclose(scaled[..., :2].mean((0, 1)), 0, atol=1e-5)
    np.testing.assert_allclose(scaled[..., :2].std((0, 1)), 1, atol=1e-4)
    with pytest.raises(ValueError, match="finite numbers \\(one per input feature\\)"):
        spec(normalization={"mean": [0.0], "std": [1.0]})
