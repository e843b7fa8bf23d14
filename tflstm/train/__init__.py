"""Training API (TensorFlow graph mode): the cell, the loop and the model builder."""

from tflstm.train.cell import LSTMStateTuple, TFLiteLSTMCell
from tflstm.train.rnn import dynamic_rnn

__all__ = ["LSTMStateTuple", "TFLiteLSTMCell", "dynamic_rnn"]
