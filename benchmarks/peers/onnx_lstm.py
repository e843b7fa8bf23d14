"""`onnxruntime_lstm`: one ONNX `LSTM` op per layer with explicit state I/O, in ONNX Runtime.

The graph (built with `onnx.helper`, sequence length 1, batch 1) takes `x`
[1, 1, depth] and per layer k `h_k`, `c_k` [1, 1, units] (the LSTM op's
`initial_h` / `initial_c`), and returns `y` [1, 1, outputs] plus `new_h_k`,
`new_c_k` (the op's `Y_h` / `Y_c`), which the step feeds back. Building needs
`onnx`; running needs only `onnxruntime`.
"""

from __future__ import annotations

import numpy as np

from benchmarks.peers import _deps
from benchmarks.peers.weights import Weights, dims, onnx_lstm_weights

NAME = "onnxruntime_lstm"
OPSET = 17
IR_VERSION = 8
_ACTIVATION_OPS = {"sigmoid": "Sigmoid", "softmax": "Softmax", "linear": "Identity"}


def state_names(layer: int) -> tuple[str, str]:
    """Input names of layer `layer`'s h and c; outputs are `new_<name>`."""
    return f"h_{layer}", f"c_{layer}"


def build_onnx_model(weights: Weights) -> bytes:
    """The step graph of `weights` as a serialized ONNX `ModelProto`."""
    onnx = _deps.require("onnx", NAME)
    helper, numpy_helper, FLOAT = onnx.helper, onnx.numpy_helper, onnx.TensorProto.FLOAT
    d = dims(weights)
    inputs = [helper.make_tensor_value_info("x", FLOAT, [1, 1, d.depth])]
    outputs = []
    initializers, nodes = [], []
    x = "x"
    for k, (layer, units) in enumerate(zip(weights["layers"], d.units)):
        w, r, b = onnx_lstm_weights(layer)
        names = [f"W_{k}", f"R_{k}", f"B_{k}"]
        initializers += [numpy_helper.from_array(a, n) for a, n in zip((w, r, b), names)]
        h, c = state_names(k)
        inputs += [helper.make_tensor_value_info(n, FLOAT, [1, 1, units]) for n in (h, c)]
        outputs += [helper.make_tensor_value_info(f"new_{n}", FLOAT, [1, 1, units]) for n in (h, c)]
        nodes.append(helper.make_node(
            "LSTM", [x, *names, "", h, c], ["", f"new_{h}", f"new_{c}"],
            name=f"lstm_{k}", hidden_size=units,
        ))
        # Y_h is [directions=1, batch=1, units], which is also a [time=1, batch=1, units]
        # sequence: it feeds the next layer (and the head) without a Squeeze.
        x = f"new_{h}"
    initializers += [
        numpy_helper.from_array(np.asarray(weights["head"]["kernel"], np.float32), "head_kernel"),
        numpy_helper.from_array(np.asarray(weights["head"]["bias"], np.float32), "head_bias"),
    ]
    nodes += [
        helper.make_node("MatMul", [x, "head_kernel"], ["logits_nobias"]),
        helper.make_node("Add", ["logits_nobias", "head_bias"], ["logits"]),
    ]
    activation = _ACTIVATION_OPS[weights["activation"]]
    attributes = {"axis": -1} if activation == "Softmax" else {}
    nodes.append(helper.make_node(activation, ["logits"], ["y"], **attributes))
    outputs.insert(0, helper.make_tensor_value_info("y", FLOAT, [1, 1, d.outputs]))
    graph = helper.make_graph(nodes, "lstm_step", inputs, outputs, initializers)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
        producer_name="benchmarks.peers",
    )
    onnx.checker.check_model(model)
    return model.SerializeToString()


class OnnxRuntimeStep:
    """Steps the ONNX step graph in an ONNX Runtime session, carrying Y_h/Y_c back.

    The session uses `threads` intra-op threads, one inter-op thread and
    sequential execution, on the CPU provider.
    """

    name = NAME

    def __init__(self, model: bytes, threads: int = 1) -> None:
        ort = _deps.require("onnxruntime", NAME)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.threads = threads
        shapes = {i.name: tuple(i.shape) for i in self.session.get_inputs()}
        self._x_shape = shapes.pop("x")
        self._zeros = {name: np.zeros(shape, np.float32) for name, shape in shapes.items()}
        self._states = list(shapes)
        self._outputs = [o.name for o in self.session.get_outputs()]
        if self._outputs != ["y", *(f"new_{n}" for n in self._states)]:
            raise ValueError(f"Unexpected graph outputs {self._outputs} for state inputs {self._states}.")
        self._feeds: dict[str, np.ndarray] = {}
        self.reset()

    def reset(self) -> None:
        """Zeroes the carried states."""
        self._feeds = {"x": np.zeros(self._x_shape, np.float32), **self._zeros}

    def step(self, x: np.ndarray) -> np.ndarray:
        """x float32 [depth] -> head output float32 [outputs]."""
        feeds = self._feeds
        feeds["x"] = x.reshape(self._x_shape)
        y, *states = self.session.run(self._outputs, feeds)
        feeds.update(zip(self._states, states))
        return y.reshape(-1)


def make_onnxruntime_lstm(weights: Weights, *, threads: int = 1) -> OnnxRuntimeStep:
    """ONNX `LSTM` ops with explicit initial_h/c -> Y_h/c, run in ONNX Runtime."""
    return OnnxRuntimeStep(build_onnx_model(weights), threads)
