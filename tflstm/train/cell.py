"""`TFLiteLSTMCell`: one LSTM step whose weights map one-to-one onto the fused op.

The cell stores one variable per fused-op weight slot (see `tflstm.fused_op` for
the slot layout, gate order and the step equations), so the converter can hand
each variable to the `UNIDIRECTIONAL_SEQUENCE_LSTM` op unchanged.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import tensorflow as tf

from tflstm import fused_op
from tflstm.fused_op import PROJECTION_WEIGHT_NAME, WEIGHT_SLOTS, weight_name
from tflstm.train.ophint import LayerHint


class LSTMStateTuple(NamedTuple):
    """The state of one LSTM layer.

    Attributes:
        c: float32 [batch, num_units], the cell state.
        h: float32 [batch, output_size], the output (hidden) state.
    """

    c: Any
    h: Any


def _check_clip(name: str, value: float | None) -> float | None:
    if value is not None and not value > 0:
        raise ValueError(f"`{name}` must be a positive number or None, got {value!r}.")
    return value


class TFLiteLSTMCell:
    """An LSTM cell (TensorFlow graph mode) that converts to the fused TFLite op.

    Use it with `tflstm.dynamic_rnn`, which runs it over time in a control-flow-v2
    while loop wrapped in the hints the converter needs; every layer then becomes
    one `UNIDIRECTIONAL_SEQUENCE_LSTM` op.

    Unlike `tf.compat.v1.nn.rnn_cell.LSTMCell`, `forget_bias` is the *initial
    value* of the forget gate's trainable bias rather than a constant added at
    every step: the fused op has no slot for such a constant, so folding it into
    the bias keeps TensorFlow and TFLite computing the same function.

    Args:
        num_units: Number of LSTM units (the size of the cell state `c`).
        use_peepholes: Adds the diagonal cell-to-gate (peephole) connections.
            Default: False.
        cell_clip: If set, the cell state is clipped to [-cell_clip, cell_clip]
            after every step. Default: None (no clipping).
        num_proj: If set, the output is projected to this size by a learned
            matrix (no bias), and the `h` state has this size. Default: None.
        proj_clip: If set (requires `num_proj`), the projected output is clipped
            to [-proj_clip, proj_clip]. Default: None.
        forget_bias: Initial value of the forget gate's bias. Default: 1.0.
        initializer: Initializer of the weight, peephole and projection
            matrices. Default: None (glorot uniform).
        name: Variable scope of the layer's variables and the name its state gets
            in converted models (`<name>/h`, `<name>/c`); unique per model.
            Default: None, in which case `dynamic_rnn` names layers `lstm_0`,
            `lstm_1`, ... numbered across every `dynamic_rnn` call of the graph.
    """

    def __init__(
        self,
        num_units: int,
        use_peepholes: bool = False,
        cell_clip: float | None = None,
        num_proj: int | None = None,
        proj_clip: float | None = None,
        forget_bias: float = 1.0,
        initializer: Any = None,
        name: str | None = None,
    ) -> None:
        if not isinstance(num_units, int) or num_units <= 0:
            raise ValueError(f"`num_units` must be a positive int, got {num_units!r}.")
        if num_proj is not None and (not isinstance(num_proj, int) or num_proj <= 0):
            raise ValueError(f"`num_proj` must be a positive int or None, got {num_proj!r}.")
        if proj_clip is not None and num_proj is None:
            raise ValueError("`proj_clip` needs a projection: set `num_proj` as well.")
        self.num_units = num_units
        self.use_peepholes = bool(use_peepholes)
        self.cell_clip = _check_clip("cell_clip", cell_clip)
        self.num_proj = num_proj
        self.proj_clip = _check_clip("proj_clip", proj_clip)
        self.forget_bias = float(forget_bias)
        self.initializer = initializer
        self.name = name
        self._variables: dict[str, tf.Variable] = {}
        self._graph: tf.Graph | None = None

    @property
    def output_size(self) -> int:
        """Size of the output and of the `h` state."""
        return self.num_proj or self.num_units

    @property
    def state_size(self) -> LSTMStateTuple:
        """Sizes of the `c` and `h` states."""
        return LSTMStateTuple(c=self.num_units, h=self.output_size)

    @property
    def built(self) -> bool:
        """True once the variables exist in the current default graph."""
        return self._graph is tf.compat.v1.get_default_graph()

    @property
    def variables(self) -> dict[str, tf.Variable]:
        """The layer's variables by weight name (`input_to_input_w`, ...)."""
        return dict(self._variables)

    def zero_state(self, batch_size: Any, dtype: tf.DType = tf.float32) -> LSTMStateTuple:
        """Returns the zero state: float32 [batch_size, num_units] and [batch_size, output_size]."""
        return LSTMStateTuple(
            c=tf.zeros([batch_size, self.num_units], dtype=dtype),
            h=tf.zeros([batch_size, self.output_size], dtype=dtype),
        )

    def build(self, input_depth: int) -> None:
        """Creates the variables in the current graph for inputs of `input_depth` features."""
        if not isinstance(input_depth, int) or input_depth <= 0:
            raise ValueError(
                f"The input depth of {self.name or 'an LSTM layer'} must be a known positive "
                f"int, got {input_depth!r}."
            )
        n, out = self.num_units, self.output_size
        shapes = {weight_name("input", g): [n, input_depth] for g in fused_op.GATES}
        shapes.update({weight_name("recurrent", g): [n, out] for g in fused_op.GATES})
        if self.use_peepholes:
            shapes.update({weight_name("peephole", g): [n] for g in fused_op.PEEPHOLE_WEIGHTS})
        biases = {weight_name("bias", g): g for g in fused_op.GATES}
        shapes.update({key: [n] for key in biases})
        if self.num_proj is not None:
            shapes[PROJECTION_WEIGHT_NAME] = [self.num_proj, n]

        def initializer(key: str) -> Any:
            if biases.get(key) == "forget":
                return tf.compat.v1.constant_initializer(self.forget_bias)
            return tf.compat.v1.zeros_initializer() if key in biases else self.initializer

        with tf.compat.v1.variable_scope(self.name, default_name="lstm") as scope:
            self.name = scope.name.rsplit("/", 1)[-1]
            self._variables = {
                key: tf.compat.v1.get_variable(
                    key, shape=shape, dtype=tf.float32, initializer=initializer(key), use_resource=True
                )
                for key, shape in shapes.items()
            }
        self._graph = tf.compat.v1.get_default_graph()

    def read_weights(self) -> dict[str, tf.Tensor]:
        """Reads the variables, by weight name; call it outside any loop body.

        Inside a while loop the converter can only follow a weight back to the
        loop's inputs, so the loop must capture these reads rather than read the
        variables itself.
        """
        return {key: tf.identity(var) for key, var in self._variables.items()}

    def step(
        self,
        inputs: tf.Tensor,
        state: LSTMStateTuple,
        hint: LayerHint,
        weights: dict[str, tf.Tensor],
    ) -> tuple[tf.Tensor, LSTMStateTuple]:
        """Runs one step under `hint` (one hint per converted layer).

        Args:
            inputs: float32 [batch, depth], one time step.
            state: the previous `LSTMStateTuple(c, h)`.
            hint: the layer's hint; every step of one layer shares it.
            weights: the layer's weights from `read_weights()`.

        Returns:
            `(h, LSTMStateTuple(c, h))` with the new state; `h` is the output.
        """
        if inputs.dtype != tf.float32:
            raise TypeError(f"{self.name}: inputs must be float32, got {inputs.dtype.name}.")
        w = {key: hint.weight(value, WEIGHT_SLOTS[key], key) for key, value in weights.items()}
        x = hint.step_input(inputs)
        c_prev, h_prev = hint.state_inputs(state.c, state.h)  # c: cell state, h: output state

        def gate(name: str) -> tf.Tensor:
            return (
                tf.matmul(x, w[weight_name("input", name)], transpose_b=True)
                + tf.matmul(h_prev, w[weight_name("recurrent", name)], transpose_b=True)
                + w[weight_name("bias", name)]
            )

        i, f, g, o = (gate(name) for name in fused_op.GATES)
        if self.use_peepholes:
            i += w[weight_name("peephole", "input")] * c_prev
            f += w[weight_name("peephole", "forget")] * c_prev
        c = tf.sigmoid(f) * c_prev + tf.sigmoid(i) * tf.tanh(g)
        if self.cell_clip is not None:
            c = tf.clip_by_value(c, -self.cell_clip, self.cell_clip)
        if self.use_peepholes:
            o += w[weight_name("peephole", "output")] * c
        h = tf.sigmoid(o) * tf.tanh(c)
        if self.num_proj is not None:
            h = tf.matmul(h, w[PROJECTION_WEIGHT_NAME], transpose_b=True)
            if self.proj_clip is not None:
                h = tf.clip_by_value(h, -self.proj_clip, self.proj_clip)
        c, h = hint.step_outputs(c, h)
        return h, LSTMStateTuple(c=c, h=h)

