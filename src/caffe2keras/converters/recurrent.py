"""LSTM, RNN and LSTMUnit at inference, in Caffe's (time, stream, ...) layout with its ``cont`` input,
and CRNN's ContinuationIndicator, which makes that input.

Caffe unrolls these layers into a net of InnerProduct, Eltwise and LSTMUnit
layers whose parameters are, in order: the input weights and bias, the static
input's weights (with a third bottom), the recurrent weights, and for RNN the
output weights and bias. Each starts from zero state, as Caffe's first
forward pass does.
"""

from __future__ import annotations

import math

import numpy as np

from caffe2keras.converters.base import LayerDoc, Node, Step, converts, require
from caffe2keras.converters.fillers import caffe_filler
from caffe2keras.converters.keras_layers import caffe_layers
from caffe2keras.graph import Op, Shape

STATES = {"LSTM": 2, "RNN": 1}
GATES = {"LSTM": 4, "RNN": 1}


def _has_static_input(op: Op) -> bool:
    exposed = STATES[op.type] if op.param.recurrent_param.expose_hidden else 0
    return len(op.bottoms) > 2 + exposed


def recurrent_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    p = op.param.recurrent_param
    require(p.num_output > 0, op, "num_output must be positive", "recurrent_param.num_output", p.num_output)
    require(
        len(in_shapes) >= 2,
        op,
        "a recurrent layer takes x (T, N, ...) and cont (T, N)",
        "bottom",
        [b.name for b in op.bottoms],
    )
    x, cont = in_shapes[0], in_shapes[1]
    require(len(x) >= 3, op, "x must be (T, N, features...)", "bottom_shapes", [tuple(s) for s in in_shapes])
    require(
        tuple(cont) == tuple(x[:2]),
        op,
        f"cont must be (T, N) = {tuple(x[:2])}",
        "bottom_shapes",
        [tuple(s) for s in in_shapes],
    )
    steps, streams = x[:2]
    state = (1, streams, p.num_output)
    states = STATES[op.type] if p.expose_hidden else 0
    static = _has_static_input(op)
    require(
        len(in_shapes) == 2 + static + states,
        op,
        f"expected x, cont, optionally x_static, then {states} initial state(s)",
        "bottom",
        [b.name for b in op.bottoms],
    )
    if static:
        require(
            len(in_shapes[2]) >= 2 and in_shapes[2][0] == streams,
            op,
            f"x_static must be (N={streams}, ...)",
            "bottom_shapes",
            [tuple(s) for s in in_shapes],
        )
    for given in in_shapes[2 + static :]:
        require(
            tuple(given) == state, op, f"initial states must be {state}", "bottom_shapes", [tuple(s) for s in in_shapes]
        )
    require(len(op.tops) == 1 + states, op, f"expected {1 + states} top(s)", "top", [t.name for t in op.tops])
    return [(steps, streams, p.num_output), *[state] * states]


def _blobs(node: Node) -> list[tuple[str, Shape]]:
    """The layer's blobs in Caffe's order -- W_x, b, (W_static), W_h, and for RNN W_o, b_o --
    with the names of the Keras layer's variables."""
    units = node.param.recurrent_param.num_output
    width = GATES[node.type] * units
    blobs = [("input_kernel", (width, math.prod(node.in_shapes[0][2:]))), ("bias", (width,))]
    if _has_static_input(node.op):
        blobs.append(("static_kernel", (width, math.prod(node.in_shapes[2][1:]))))
    blobs.append(("recurrent_kernel", (width, units)))
    if node.type == "RNN":
        blobs += [("output_kernel", (units, units)), ("output_bias", (units,))]
    return blobs


@converts(
    "LSTM",
    "RNN",
    shapes=recurrent_shapes,
    doc=LayerDoc(
        "`CaffeLSTM`, `CaffeRNN`",
        "see [Recurrent layers](#recurrent-layers): gates i, f, o, g; `cont`; static input; `expose_hidden`",
    ),
)
def recurrent(node: Node) -> Step:
    """Caffe's LSTM and RNN as the CaffeLSTM and CaffeRNN layers."""
    p = node.param.recurrent_param
    weights, fillers = [], {}
    for index, (name, shape) in enumerate(_blobs(node)):
        blob = node.blob(index, shape, "recurrent_param.num_output", p.num_output)
        # Caffe's InnerProduct weights are (outputs, inputs); Keras kernels (inputs, outputs).
        weights.append(blob.T if blob is not None and blob.ndim == 2 else blob)
        filler = "recurrent_param.weight_filler" if len(shape) == 2 else "recurrent_param.bias_filler"
        fillers[f"{name}_initializer"] = caffe_filler(node.param, filler, shape)
    layer_class = caffe_layers.CaffeLSTM if node.type == "LSTM" else caffe_layers.CaffeRNN
    layer = layer_class(
        p.num_output,
        static_input=_has_static_input(node.op),
        expose_hidden=p.expose_hidden,
        data_format=node.layout.data_format,
        **fillers,
    )
    return Step(layer, weights)


def lstm_unit_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    bottoms = [tuple(s) for s in in_shapes]
    require(
        len(bottoms) == 3,
        op,
        "LSTMUnit takes c_prev (1, N, H), gates (1, N, 4H) and cont (1, N)",
        "bottom",
        [b.name for b in op.bottoms],
    )
    c_prev, gates, cont = bottoms
    require(
        len(c_prev) == 3 and c_prev[0] == 1 and gates == (1, c_prev[1], 4 * c_prev[2]) and cont == c_prev[:2],
        op,
        "bottoms must be c_prev (1, N, H), gates (1, N, 4H) and cont (1, N)",
        "bottom_shapes",
        bottoms,
    )
    return [c_prev, c_prev]


@converts(
    "LSTMUnit",
    shapes=lstm_unit_shapes,
    doc=LayerDoc("`LSTMUnit`", "one LSTM step: `c_prev (1, N, H)`, gates `(1, N, 4H)`, `cont (1, N)`"),
)
def lstm_unit(node: Node) -> Step:
    """Caffe's LSTMUnit as the LSTMUnit layer."""
    return Step(caffe_layers.LSTMUnit(data_format=node.layout.data_format))


def continuation_indicator_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    p = op.param.continuation_indicator_param
    require(not in_shapes, op, "ContinuationIndicator takes no bottoms", "bottom", [b.name for b in op.bottoms])
    field = "continuation_indicator_param.time_step"
    require(p.time_step > 0, op, "time_step must be positive", field, p.time_step)
    field = "continuation_indicator_param.batch_size"
    require(p.batch_size > 0, op, "batch_size must be positive", field, p.batch_size)
    return [(p.time_step, p.batch_size)]


@converts(
    "ContinuationIndicator",
    shapes=continuation_indicator_shapes,
    min_bottoms=0,
    doc=LayerDoc(
        "`LearnedTensor` (frozen)",
        "`time_step`, `batch_size`: the `cont` blob `(T, N)`, 0 at `t = 0` and 1 after",
        origin="CRNN",
    ),
)
def continuation_indicator(node: Node) -> Step:
    """CRNN's ContinuationIndicator: the cont blob (time_step, batch_size) of a recurrent layer that
    starts every stream at t = 0 -- 0 in the first row, 1 elsewhere -- as a fixed tensor."""
    steps, streams = node.out_shapes[0]
    cont = np.ones((steps, streams), np.float32)
    cont[0] = 0.0
    return Step(caffe_layers.LearnedTensor((steps, streams), trainable=False), (cont,))
