"""LSTM and RNN against references unrolled here as Caffe unrolls them (lstm_layer.cpp, rnn_layer.cpp)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import caffe2keras
from tests import oracle
from tests.golden import assert_matches
from tests.nets import convert_and_run, layer, net, write_net
from tests.oracle import sigmoid
from tests.shared import FORMATS

RNG = np.random.default_rng(7)
UNITS = 3


def caffe_tanh(x):
    return 2 * sigmoid(2 * x) - 1  # LSTMUnit's own tanh


def inner_product(x, weight, bias=None):
    """InnerProduct over the last axis (Caffe's weights are (outputs, inputs))."""
    return oracle.inner_product(x, weight, bias, axis=x.ndim - 1)


def caffe_lstm(x, cont, blobs, static=None, h0=None, c0=None):
    """The unrolled net: x_transform, h_conted = cont_t * h, gate sums, LSTMUnit (gates i, f, o, g)."""
    steps, streams = x.shape[:2]
    w_x, b, *rest = blobs
    w_static = rest.pop(0) if static is not None else None
    (w_h,) = rest
    units = w_h.shape[1]
    drive = inner_product(x.reshape(steps, streams, -1), w_x, b)
    if static is not None:
        drive = drive + inner_product(static.reshape(streams, -1), w_static)
    h = np.zeros((streams, units)) if h0 is None else h0[0]
    c = np.zeros((streams, units)) if c0 is None else c0[0]
    hs = []
    for t in range(steps):
        gates = inner_product(cont[t][:, None] * h, w_h) + drive[t]
        i, f, o, g = (gates[:, k * units : (k + 1) * units] for k in range(4))
        forget = np.where(cont[t][:, None] == 0, 0, cont[t][:, None] * sigmoid(f))
        c = forget * c + sigmoid(i) * caffe_tanh(g)
        h = sigmoid(o) * caffe_tanh(c)
        hs.append(h)
    return np.stack(hs), h[None], c[None]


def caffe_rnn(x, cont, blobs, static=None, h0=None):
    steps, streams = x.shape[:2]
    w_x, b, *rest = blobs
    w_static = rest.pop(0) if static is not None else None
    w_h, w_o, b_o = rest
    drive = inner_product(x.reshape(steps, streams, -1), w_x, b)
    if static is not None:
        drive = drive + inner_product(static.reshape(streams, -1), w_static)
    h = np.zeros((streams, UNITS)) if h0 is None else h0[0]
    outputs = []
    for t in range(steps):
        h = np.tanh(inner_product(cont[t][:, None] * h, w_h) + drive[t])
        outputs.append(np.tanh(inner_product(h, w_o, b_o)))
    return np.stack(outputs), h[None]


def blobs_for(kind: str, features: int, static_features: int | None):
    width = 4 * UNITS if kind == "LSTM" else UNITS
    shapes = [(width, features), (width,)]
    if static_features is not None:
        shapes.append((width, static_features))
    shapes.append((width, UNITS))
    if kind == "RNN":
        shapes += [(UNITS, UNITS), (UNITS,)]
    return [(RNG.standard_normal(s) * 0.6).astype(np.float32) for s in shapes]


def recurrent_net(kind: str, shapes: dict, expose_hidden: bool) -> str:
    final_states = ["h_T", "c_T"] if kind == "LSTM" else ["h_T"]
    tops = ["h", *final_states] if expose_hidden else ["h"]
    params = f"recurrent_param {{ num_output: {UNITS} expose_hidden: {str(expose_hidden).lower()} }}"
    return net(shapes, layer(kind, params, bottoms=shapes, tops=tops, name="rec"))


# Stream 0 starts over at t=3; stream 1 carries a non-binary cont, which Caffe scales by.
CONT = np.array([[0, 0], [1, 1], [1, 0.5], [0, 1], [1, 1]], np.float32)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("kind", ["LSTM", "RNN"])
@pytest.mark.parametrize(
    "x_shape, static_shape, expose_hidden",
    [
        ((5, 2, 4), None, False),
        ((5, 2, 2, 3), (2, 3, 2), False),
        ((5, 2, 4), None, True),
    ],
)
def test_recurrent_layer_unrolls_like_caffe(kind, x_shape, static_shape, expose_hidden, data_format, tmp_path):
    x = RNG.standard_normal(x_shape).astype(np.float32)
    shapes = {"x": x_shape, "cont": CONT.shape}
    arrays = [x, CONT]
    static = None
    if static_shape:
        static = RNG.standard_normal(static_shape).astype(np.float32)
        shapes["x_static"] = static_shape
        arrays.append(static)
    states = {}
    if expose_hidden:
        for name in ["h_0", "c_0"] if kind == "LSTM" else ["h_0"]:
            states[name] = RNG.standard_normal((1, 2, UNITS)).astype(np.float32)
            shapes[name] = (1, 2, UNITS)
            arrays.append(states[name])
    blobs = blobs_for(kind, math.prod(x_shape[2:]), static_shape and math.prod(static_shape[1:]))
    text = recurrent_net(kind, shapes, expose_hidden)
    outputs = ["h", "h_T", "c_T"][: 1 + len(states)] if expose_hidden else ["h"]
    actual = convert_and_run(tmp_path, text, arrays, data_format, [("rec", kind, blobs)], outputs=outputs)
    if kind == "LSTM":
        reference = caffe_lstm(x, CONT, blobs, static, states.get("h_0"), states.get("c_0"))
    else:
        reference = caffe_rnn(x, CONT, blobs, static, states.get("h_0"))
    for name, got, expected in zip(outputs, actual, reference):
        assert_matches(got, expected, f"{kind} {name}")


def test_recurrent_layer_checks_cont_shape(tmp_path):
    text = recurrent_net("LSTM", {"x": (5, 2, 4), "cont": (5, 3)}, False)
    prototxt, _ = write_net(tmp_path, text)
    with pytest.raises(caffe2keras.ShapeError, match=r"cont must be \(T, N\) = \(5, 2\)"):
        caffe2keras.convert(prototxt)


@pytest.mark.parametrize("data_format", FORMATS)
def test_lstm_unit_is_one_caffe_step(data_format, tmp_path):
    streams = 3
    c_prev = RNG.standard_normal((1, streams, UNITS)).astype(np.float32)
    gates = RNG.standard_normal((1, streams, 4 * UNITS)).astype(np.float32)
    cont = np.array([[0, 1, 0.5]], np.float32)
    shapes = {"c_prev": c_prev.shape, "gates": gates.shape, "cont": cont.shape}
    text = net(shapes, layer("LSTMUnit", bottoms=shapes, tops=("c", "h")))
    c, h = convert_and_run(tmp_path, text, [c_prev, gates, cont], data_format, outputs=["c", "h"])
    # LSTMUnitLayer::Forward_cpu, element by element.
    i, f, o, g = (gates[0, :, k * UNITS : (k + 1) * UNITS] for k in range(4))
    forget = np.where(cont.T == 0, 0, cont.T * sigmoid(f))
    expected_c = forget * c_prev[0] + sigmoid(i) * caffe_tanh(g)
    assert_matches(c, expected_c[None], "LSTMUnit c")
    assert_matches(h, (sigmoid(o) * caffe_tanh(expected_c))[None], "LSTMUnit h")


@pytest.mark.parametrize("kind", ["LSTM", "RNN"])
def test_recurrent_layer_initializes_with_caffe_fillers(kind, tmp_path):
    params = (
        f"recurrent_param {{ num_output: {UNITS} weight_filler {{ type: 'constant' value: 0.5 }} "
        "bias_filler { type: 'constant' value: 0.1 } }"
    )
    prototxt, _ = write_net(tmp_path, net({"x": (5, 2, 4), "cont": (5, 2)}, layer(kind, params, ("x", "cont"), ("h",))))
    model = caffe2keras.convert(prototxt)  # architecture only: every variable from its filler
    for variable in model.get_layer("l").weights:
        expected = 0.1 if "bias" in variable.name else 0.5
        np.testing.assert_array_equal(variable.numpy(), np.full(variable.shape, expected, np.float32))
