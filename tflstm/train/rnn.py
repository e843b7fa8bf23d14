"""`dynamic_rnn`: a time-major, control-flow-v2 loop over TFLite LSTM cells."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import NamedTuple

import tensorflow as tf

from tflstm.train.cell import LSTMStateTuple, TFLiteLSTMCell
from tflstm.train.ophint import LayerHint, LoopHint

class LoopRecord(NamedTuple):
    """What one `dynamic_rnn` call built, as the converter needs it.

    Attributes:
        cells: the layers, bottom first.
        outputs: the loop output, float32 [time, batch, output_size].
        final_state: one `LSTMStateTuple(c, h)` per layer.
    """

    cells: tuple[TFLiteLSTMCell, ...]
    outputs: tf.Tensor
    final_state: tuple[LSTMStateTuple, ...]


_LOOPS: weakref.WeakKeyDictionary[tf.Graph, list[LoopRecord]] = weakref.WeakKeyDictionary()


def loop_records(graph: tf.Graph) -> list[LoopRecord]:
    """The `dynamic_rnn` loops built in `graph`, in the order they were built."""
    return list(_LOOPS.get(graph, []))


def dynamic_rnn(
    cell: TFLiteLSTMCell | Sequence[TFLiteLSTMCell],
    inputs: tf.Tensor,
    initial_state: Sequence[LSTMStateTuple] | LSTMStateTuple | None = None,
    dtype: tf.DType | None = None,
    time_major: bool = True,
    scope: str | None = None,
) -> tuple[tf.Tensor, tuple[LSTMStateTuple, ...]]:
    """Runs LSTM layers over time so that each layer converts to one fused op.

    Graph mode only (`tf.compat.v1`), with control flow v2, which is TensorFlow
    2's default. The layers run inside one while loop; each step feeds layer k's
    output to layer k + 1.

    Args:
        cell: a `TFLiteLSTMCell` or a list of them (stacked layers, bottom first).
        inputs: float32 [time, batch, depth], time-major. The depth must be known.
        initial_state: one `LSTMStateTuple(c, h)` per layer (a single tuple for a
            single cell). Default: None, the zero state. A converted model always
            starts from the zero state: streaming models take the state as input.
        dtype: the state dtype when `initial_state` is None; only float32 is
            supported. Default: None (float32).
        time_major: must be True; kept so that code written for the old API states
            it explicitly.
        scope: variable scope of the layers. Default: None ("rnn").

    Returns:
        `(outputs, final_state)`: outputs is float32 [time, batch, output_size]
        of the top layer; final_state is a tuple with one `LSTMStateTuple(c, h)`
        per layer, the state after the last step.

    Raises:
        ValueError: on batch-major use, a wrong input rank or unknown depth.
        RuntimeError: when control flow v2 is off or eager execution is on.
    """
    if not time_major:
        raise ValueError(
            "`dynamic_rnn` is time-major only: pass inputs as [time, batch, depth] "
            "(e.g. tf.transpose(x, [1, 0, 2])) and time_major=True, got time_major=False."
        )
    if not tf.compat.v1.control_flow_v2_enabled():
        raise RuntimeError(
            "`dynamic_rnn` needs control flow v2, which is off in this process: call "
            "tf.compat.v1.enable_control_flow_v2() before building the graph (and do not "
            "call tf.compat.v1.disable_v2_behavior())."
        )
    if tf.executing_eagerly():
        raise RuntimeError(
            "`dynamic_rnn` builds a graph for conversion: call it inside "
            "`with tf.Graph().as_default():` (or after tf.compat.v1.disable_eager_execution())."
        )
    cells = [cell] if isinstance(cell, TFLiteLSTMCell) else list(cell)
    if not cells or not all(isinstance(c, TFLiteLSTMCell) for c in cells):
        raise TypeError(
            f"`cell` must be a TFLiteLSTMCell or a non-empty list of them, got {cell!r}."
        )
    if dtype not in (None, tf.float32):
        raise ValueError(f"Only float32 is supported for `dtype`, got {dtype!r}.")
    inputs = tf.convert_to_tensor(inputs)
    if inputs.shape.rank != 3:
        raise ValueError(
            "`inputs` must be time-major [time, batch, depth] (rank 3), got shape "
            f"{inputs.shape} (rank {inputs.shape.rank})."
        )
    if inputs.dtype != tf.float32:
        raise ValueError(f"`inputs` must be float32, got {inputs.dtype.name}.")
    depth = inputs.shape[2]
    if depth is None:
        raise ValueError(f"The depth (last dimension) of `inputs` must be known, got {inputs.shape}.")

    with tf.compat.v1.variable_scope(scope, default_name="rnn"):
        layer_depth = int(depth)
        # Unnamed layers are numbered across the graph's loops, so their state names stay unique.
        built_before = sum(len(loop.cells) for loop in loop_records(tf.compat.v1.get_default_graph()))
        for k, layer in enumerate(cells):
            if layer.name is None:
                layer.name = f"lstm_{built_before + k}"
            if not layer.built:
                layer.build(layer_depth)
            layer_depth = layer.output_size

        batch = tf.shape(inputs)[1]
        state = _initial_state(cells, initial_state, batch)
        loop_hint = LoopHint()
        layer_hints = [LayerHint() for _ in cells]
        layer_weights = [layer.read_weights() for layer in cells]
        hinted = loop_hint.loop_input(inputs)
        time_steps = tf.shape(hinted)[0]
        steps_in = tf.TensorArray(tf.float32, size=time_steps).unstack(hinted)
        steps_out = tf.TensorArray(tf.float32, size=time_steps)

        # The converter copies the loop body's nodes into the outer graph by name,
        # so body names must not collide with outer ones: give them a reserved scope.
        body_scope = tf.compat.v1.get_default_graph().unique_name("tflstm_loop_body") + "/"

        def body(t, steps_out, *flat_state):
            with tf.name_scope(body_scope):
                x = steps_in.read(t)
                new_state = []
                for k, layer in enumerate(cells):
                    layer_state = LSTMStateTuple(*flat_state[2 * k : 2 * k + 2])
                    x, layer_state = layer.step(x, layer_state, layer_hints[k], layer_weights[k])
                    new_state.extend(layer_state)
                return (t + 1, steps_out.write(t, x), *new_state)

        flat_initial = [tensor for layer_state in state for tensor in layer_state]
        result = tf.while_loop(
            lambda t, *_: t < time_steps,
            body,
            loop_vars=(tf.constant(0), steps_out, *flat_initial),
        )
        outputs = result[1].stack()
        outputs.set_shape([inputs.shape[0], inputs.shape[1], cells[-1].output_size])
        outputs = loop_hint.loop_output(outputs)
        flat_final = result[2:]
        final_state = tuple(
            LSTMStateTuple(c=flat_final[2 * k], h=flat_final[2 * k + 1]) for k in range(len(cells))
        )
    _LOOPS.setdefault(tf.compat.v1.get_default_graph(), []).append(
        LoopRecord(tuple(cells), outputs, final_state)
    )
    return outputs, final_state


def _initial_state(
    cells: list[TFLiteLSTMCell],
    initial_state: Sequence[LSTMStateTuple] | LSTMStateTuple | None,
    batch: tf.Tensor,
) -> list[LSTMStateTuple]:
    if initial_state is None:
        return [layer.zero_state(batch) for layer in cells]
    if isinstance(initial_state, LSTMStateTuple):
        initial_state = [initial_state]
    states = list(initial_state)
    if len(states) != len(cells):
        raise ValueError(
            f"`initial_state` must hold one (c, h) pair per layer: expected {len(cells)}, "
            f"got {len(states)}."
        )
    return [LSTMStateTuple(c=tf.convert_to_tensor(s[0]), h=tf.convert_to_tensor(s[1])) for s in states]
