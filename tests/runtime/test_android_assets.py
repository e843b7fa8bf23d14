"""android_assets/: the manifest matches the files, and every asset streams like TensorFlow."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from tflstm.format import TOLERANCES, ModelMetadata
from tflstm.normalization import apply as normalize
from tflstm.runtime import StreamingModel, read_metadata
from tflstm.runtime.backend import interpreter_module

from conftest import ROOT

ASSETS = ROOT / "android_assets"
MANIFEST = json.loads((ASSETS / "manifest.json").read_text())
ENTRIES = {entry["file"]: entry for entry in MANIFEST["models"]}


def test_manifest_lists_every_model_file():
    assert sorted(p.name for p in ASSETS.glob("*.tflite")) == sorted(ENTRIES)
    assert {e["metadata"]["quantization"] for e in ENTRIES.values()} == {"float32", "dynamic", "int8"}


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_manifest_matches_the_file_and_its_signature(name, backend):
    entry = ENTRIES[name]
    content = (ASSETS / name).read_bytes()
    assert hashlib.sha256(content).hexdigest() == entry["sha256"]
    assert len(content) == entry["size_bytes"]
    meta = read_metadata(content)
    assert ModelMetadata.from_dict(entry["metadata"]) == meta
    module, _ = interpreter_module(backend)
    interpreter = module.Interpreter(model_content=content)
    runner = interpreter.get_signature_runner(entry["signature"])
    inputs = [s.to_dict() for s in (*meta.inputs, *meta.states)]
    outputs = [s.to_dict() for s in (*meta.outputs, *meta.states)]
    for listed, actual in ((inputs, runner.get_input_details()), (outputs, runner.get_output_details())):
        assert sorted(t["name"] for t in listed) == sorted(actual)
        for tensor in listed:
            details = actual[tensor["name"]]
            assert list(details["shape"]) == tensor["shape"]
            assert np.dtype(details["dtype"]).name == tensor["dtype"]
            scale, zero_point = details["quantization"]
            if tensor["scale"] is not None:
                assert np.isclose(scale, tensor["scale"]) and zero_point == tensor["zero_point"]


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_every_asset_streams_like_tensorflow(name, backend):
    """Both ways an app can run it: StreamingModel, and the signature with the state carried."""
    entry, check = ENTRIES[name], MANIFEST["check"]
    x, expected = np.asarray(check["x"], np.float32), np.asarray(check["tensorflow_outputs"])
    model = StreamingModel(ASSETS / name, backend=backend)
    module, _ = interpreter_module(backend)
    runner = module.Interpreter(model_content=(ASSETS / name).read_bytes()).get_signature_runner("step")
    states = entry["metadata"]["states"]
    zero = {s["name"]: np.full(s["shape"], s["zero_point"] or 0, dtype=s["dtype"]) for s in states}
    for sequence, target in zip(x, expected):
        model.reset()
        got = np.stack([model.step(row) for row in sequence])
        assert np.abs(got - target).max() <= TOLERANCES[entry["metadata"]["quantization"]]
        state, carried = dict(zero), []
        for row in normalize(sequence, entry["metadata"]["normalization"]):  # as an app does
            result = runner(features=row.reshape(1, 1, -1), **state)
            state = {k: result[k] for k in state}
            carried.append(result["predictions"].reshape(-1))
        # The plain interpreter may apply XNNPACK to the dense head: equal up to rounding.
        np.testing.assert_allclose(np.stack(carried), got, atol=1e-6, rtol=0)
    assert np.mean(expected[:, -1].argmax(-1) == np.asarray(check["labels"])) >= 0.75
