"""The one module that touches TensorFlow's deprecated OpHint API.

An OpHint wraps tensors in Identity ops carrying attributes; at conversion time
`tf.compat.v1.lite.TFLiteConverter.from_session` finds them, cuts the hinted
subgraph out and puts a stub op in its place, which the MLIR converter legalizes
into a builtin op. tflstm uses two kinds of hints:

* `LayerHint`: one LSTM layer. Its stub is named `UnidirectionalSequenceLstm`
  and legalizes into one `UNIDIRECTIONAL_SEQUENCE_LSTM` op. Inputs are hinted at
  the fused op's slots (`tflstm.fused_op`).
* `LoopHint`: the whole time loop (the parent, level-2 hint named
  `TfLiteDynamicRnn`). It lets the converter find the layer hints inside the
  control-flow-v2 while loop's body and chain them: the loop input feeds the
  first layer, each layer feeds the next, the last layer feeds the loop output.
"""

from __future__ import annotations

import tensorflow as tf

from tflstm import fused_op

_LAYER_STUB_NAME = "UnidirectionalSequenceLstm"
_LOOP_STUB_NAME = "TfLiteDynamicRnn"

# Stub outputs of a layer hint: the legalization reads the layer output at index 2.
_CELL_OUTPUT_INDEX = 1
_LAYER_OUTPUT_INDEX = 2

# How the loop hint wires its children; -1 means a child's last output (the layer output).
_LOOP_MAPPINGS = {
    "parent_first_child_input": [
        {"parent_ophint_input_index": 0, "first_child_ophint_input_index": 0}
    ],
    "parent_last_child_output": [{"parent_output_index": 0, "child_output_index": -1}],
    "internal_children_input_output": [{"child_input_index": 0, "child_output_index": -1}],
}


class LayerHint:
    """Hints for one fused LSTM layer; create one per layer per graph."""

    def __init__(self) -> None:
        self._hint = tf.compat.v1.lite.OpHint(_LAYER_STUB_NAME)

    def weight(self, tensor: tf.Tensor, slot: int, name: str) -> tf.Tensor:
        """Marks a weight tensor as the fused op's input `slot`."""
        return self._hint.add_input(tensor, name=name, index_override=slot)

    def step_input(self, inputs: tf.Tensor) -> tf.Tensor:
        """Marks one time step's input, [batch, depth]; steps stack along time."""
        return self._hint.add_input(
            inputs, tag="input", name="input", aggregate="stack", index_override=fused_op.INPUT
        )

    def state_inputs(self, c_prev: tf.Tensor, h_prev: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Marks the state entering a step (only the first step's counts)."""
        c_prev = self._hint.add_input(
            c_prev, tag="c_prev", name="c_prev", aggregate="first",
            index_override=fused_op.CELL_STATE,
        )
        h_prev = self._hint.add_input(
            h_prev, tag="h_prev", name="h_prev", aggregate="first",
            index_override=fused_op.OUTPUT_STATE,
        )
        return c_prev, h_prev

    def step_outputs(self, c: tf.Tensor, h: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Marks the state leaving a step: `h` stacks into the layer output."""
        c = self._hint.add_output(
            c, tag="c", name="c", aggregate="last", index_override=_CELL_OUTPUT_INDEX
        )
        h = self._hint.add_output(
            h, tag="h", name="h", aggregate="stack", index_override=_LAYER_OUTPUT_INDEX
        )
        return c, h


class LoopHint:
    """The parent hint around a whole `dynamic_rnn` loop."""

    def __init__(self) -> None:
        self._hint = tf.compat.v1.lite.OpHint(
            _LOOP_STUB_NAME, level=2, children_inputs_mappings=_LOOP_MAPPINGS
        )

    def loop_input(self, inputs: tf.Tensor) -> tf.Tensor:
        """Marks the loop's time-major input, [time, batch, depth]."""
        return self._hint.add_input(inputs, name="input", index_override=0)

    def loop_output(self, outputs: tf.Tensor) -> tf.Tensor:
        """Marks the loop's time-major output, [time, batch, output_size]."""
        return self._hint.add_output(outputs, name="outputs")
