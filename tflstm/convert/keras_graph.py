"""A Keras model's network rebuilt in a TensorFlow graph with tflstm's LSTM cells.

`plan` checks the whole model before anything is built: every layer maps
(`keras_layers.map_layer`), every tensor is either a sequence (one value per
time step) or a window value (one per call, after `return_sequences=False` or
a time-mixing layer), and time-mixing layers only appear where each call sees
the model's whole window. `rebuild` then builds the graph: one `dynamic_rnn`
per Keras LSTM, so each becomes one fused op whose state is named after the
Keras layer (`<layer>/h`, `<layer>/c`), with the Keras weights loaded.
"""

from __future__ import annotations

import dataclasses
import re

import tensorflow as tf

from tflstm.convert.errors import UnsupportedModelError
from tflstm.convert.keras_layers import Lstm, Mapped, Merge, PerStep, TimeMixing, map_layer
from tflstm.convert.keras_model import KerasGraph, KerasNode
from tflstm.train.cell import TFLiteLSTMCell
from tflstm.train.rnn import dynamic_rnn

SEQUENCE = "sequence"
"""A tensor with one value per time step: Keras [batch, time, d], rebuilt time-major [time, batch, d]."""
WINDOW = "window"
"""A tensor with one value per call: Keras [batch, d], rebuilt [1, batch, d]; after
return_sequences=False or a time-mixing layer."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to rebuild, checked.

    Attributes:
        graph: the Keras model's wiring.
        time_steps: time steps per invoke of the converted model.
        mapped: what each layer computes, by layer name.
        kinds: `SEQUENCE` or `WINDOW` for every layer's output (and the input's).
    """

    graph: KerasGraph
    time_steps: int
    mapped: dict[str, Mapped]
    kinds: dict[str, str]


@dataclasses.dataclass(frozen=True)
class Rebuilt:
    """The rebuilt network, its weights loaded.

    Attributes:
        graph: the TensorFlow graph.
        sess: a session holding the weights (close it when done).
        x: float32 placeholder [time_steps, batch, depth].
        outputs: one tensor per Keras output, time-major: [time_steps, batch, d]
            for sequences, [1, batch, d] for window values.
    """

    graph: tf.Graph
    sess: tf.compat.v1.Session
    x: tf.Tensor
    outputs: list[tf.Tensor]


def _refuse(node: KerasNode, why: str, what_to_do: str) -> UnsupportedModelError:
    return UnsupportedModelError(f"Layer {node.name!r} ({type(node.layer).__name__}) {why}. {what_to_do}")


def _time_mixing_refusal(node: KerasNode, window: int | None, time_steps: int) -> UnsupportedModelError | None:
    """Why a time-mixing layer cannot be computed from calls of `time_steps` steps, or None if it can."""
    if window is not None and time_steps == window:
        return None
    drop = f"or drop {type(node.layer).__name__} and use return_sequences=False on the last LSTM (a per-step model)"
    if window is None:
        return _refuse(
            node, "mixes the time steps of a window, and the model's input has no fixed window",
            f"Give the Input a fixed time dimension W and convert with steps_per_call=W, {drop}.",
        )
    if time_steps == 1:
        return _refuse(
            node, f"mixes the {window} time steps of the model's window, which a per-step model "
            "(steps_per_call=1) cannot compute",
            f"Use steps_per_call={window} (a chunk model: {window} steps per call, the state carried between "
            f"calls, like Keras stateful=True), {drop}.",
        )
    return _refuse(
        node, f"mixes the {window} time steps of the model's window, but each call would take {time_steps}",
        f"Use steps_per_call={window}, {drop}.",
    )


def _check_axis(node: KerasNode, axis: int | None, kind: str) -> None:
    rank = 3 if kind == SEQUENCE else 2  # Keras ranks: [batch, time, d] or [batch, d]
    if axis is not None and axis not in (-1, rank - 1):
        raise _refuse(
            node, f"works along axis {axis} of its rank-{rank} input, not along the features",
            "tflstm converts layers that work along the last (feature) axis, axis=-1.",
        )


def _kind(node: KerasNode, mapped: Mapped, kinds: list[str], window: int | None, time_steps: int) -> str:
    """The kind of the layer's output, checking that it can be computed from its inputs' kinds."""
    if not isinstance(mapped, Merge) and len(kinds) != 1:
        raise _refuse(node, f"takes {len(kinds)} inputs", "Expected one input.")
    if isinstance(mapped, Lstm):
        if kinds[0] != SEQUENCE:
            raise _refuse(node, "gets one value per window, not a sequence", "Feed it the time steps.")
        return SEQUENCE if mapped.return_sequences else WINDOW
    if isinstance(mapped, Merge):
        if len(set(kinds)) != 1:
            raise _refuse(node, "merges a sequence with a one-per-window value", "Merge tensors of one kind.")
        _check_axis(node, mapped.axis, kinds[0])
        return kinds[0]
    if isinstance(mapped, PerStep):
        _check_axis(node, mapped.axis, kinds[0])
        return kinds[0]
    if kinds[0] == WINDOW:
        if mapped.on_window is None:
            raise _refuse(node, "needs a time axis but gets one value per window", "Feed it a sequence.")
        return WINDOW
    refusal = _time_mixing_refusal(node, window, time_steps)
    if refusal is not None:
        raise refusal
    return WINDOW


def plan(graph: KerasGraph, time_steps: int) -> Plan:
    """Maps and checks every layer of `graph` for a model taking `time_steps` steps per invoke.

    Raises:
        UnsupportedModelError: the first layer that cannot be converted, with why and what to do.
    """
    mapped: dict[str, Mapped] = {}
    kinds = {graph.input_name: SEQUENCE}
    for node in graph.nodes:
        mapped[node.name] = map_layer(node.layer, graph.keras)
        if "mask" in node.call_kwargs:
            raise _refuse(
                node, "is called with a mask; the fused LSTM processes every step it is given",
                "Remove the mask and feed only the real time steps.",
            )
        lstm = isinstance(mapped[node.name], Lstm)
        if node.call_kwargs or (lstm and len(node.inputs) > 1):  # tf-keras makes an initial_state extra inputs
            arguments = ", ".join(node.call_kwargs) or "initial_state"
            why = "; a converted model starts from the zero state and carries its state itself" if lstm else ""
            raise _refuse(node, f"is called with {arguments}{why}", "Call the layer on its input only.")
        kinds[node.name] = _kind(node, mapped[node.name], [kinds[n] for n in node.inputs], graph.window, time_steps)
    return Plan(graph, time_steps, mapped, kinds)


def _scope_name(name: str, taken: set[str]) -> str:
    """A TensorFlow-safe, unique version of a Keras name."""
    safe = re.sub(r"[^A-Za-z0-9_.\-]", "_", name)
    safe = safe if re.match(r"[A-Za-z0-9.]", safe) else f"layer{safe}"
    unique, k = safe, 1
    while unique in taken:
        unique, k = f"{safe}_{k}", k + 1
    taken.add(unique)
    return unique


def rebuild(planned: Plan, batch_size: int) -> Rebuilt:
    """Builds the planned network for batches of `batch_size` and loads the Keras weights."""
    keras_graph = planned.graph
    graph = tf.Graph()
    names: set[str] = set()
    cells: list[tuple[TFLiteLSTMCell, dict]] = []
    with graph.as_default():
        x = tf.compat.v1.placeholder(
            tf.float32, [planned.time_steps, batch_size, keras_graph.depth],
            name=_scope_name(keras_graph.input_name, names),
        )
        tensors = {keras_graph.input_name: x}
        for node in keras_graph.nodes:
            mapped = planned.mapped[node.name]
            inputs = [tensors[name] for name in node.inputs]
            if isinstance(mapped, Lstm):
                cell = TFLiteLSTMCell(mapped.units, name=_scope_name(node.name, names))
                outputs, _ = dynamic_rnn([cell], inputs[0])
                cells.append((cell, mapped.weights))
                if not mapped.return_sequences and planned.time_steps > 1:
                    outputs = outputs[-1:]
                tensors[node.name] = outputs
                continue
            # Scoped: an op at the graph's top level may clash with a dynamic_rnn loop's step counter.
            with tf.name_scope(f"keras/{_scope_name(node.name, set())}/"):
                if isinstance(mapped, Merge):
                    tensors[node.name] = mapped.fn(inputs)
                elif isinstance(mapped, TimeMixing) and planned.kinds[node.inputs[0]] == WINDOW:
                    tensors[node.name] = mapped.on_window.fn(inputs[0])
                else:
                    tensors[node.name] = mapped.fn(inputs[0])
        outputs = [tf.identity(tensors[name], name=_scope_name(name, names)) for name in keras_graph.outputs]
        sess = tf.compat.v1.Session(graph=graph)
        sess.run(tf.compat.v1.global_variables_initializer())
        sess.run([variable.assign(weights[key]) for cell, weights in cells for key, variable in cell.variables.items()])
    return Rebuilt(graph, sess, x, outputs)
